//! Up-to-date checks (SPEC 7): whether a run with `sources` may be skipped,
//! and the record of its success that the next invocation compares with.
//! The run stage calls `Fresh::check` before a run's steps and
//! `Check::save` after the run succeeded; nothing else here touches a run.
//! A service below the stages: it reads the run-time scope (`context`) to
//! render what a run will run, never the graph or the command line; the
//! files come from `glob`, and `-w` (the top-level `watch`) is told the
//! sources of every run checked through `SourceWatch`.

pub mod fingerprint;
mod record;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::context::{Scope, Session};
use crate::glob::{self, Patterns, Stat};
use crate::model::{StepKind, Task};
use crate::template::Mode;

use fingerprint::{Digest, Inputs};
pub use record::How;
use record::{Entry, Record, Recorded};

/// A file changed within this long before it was hashed may change again
/// within the same timestamp tick (coarse clocks, FAT's 2 s): its stat is
/// not trusted next time, and it is read again.
const RACY: Duration = Duration::from_secs(2);

/// The up-to-date state of one invocation.
pub struct Fresh {
    root: PathBuf,
    /// `-B`: never skip (but still record).
    force: bool,
    /// With `-w`: told the sources of every run checked.
    watch: Option<Arc<dyn SourceWatch>>,
    /// Hashes this invocation made, by path relative to the root, with the
    /// stat they were made at (a trusted one, as in records): a run
    /// checked twice (the remote cache's early lookup, then the run's
    /// prelude) reads no file twice.
    seen: std::sync::Mutex<HashMap<String, (Stat, Digest)>>,
}

/// What `-w` needs of the checks: the sources of every run checked, and
/// whether it stopped the runs in progress to start them again. The watch
/// loop sits above the runs it repeats; this is its one seat down here.
pub trait SourceWatch: Send + Sync {
    /// The sources of a run checked: `declared` is the task's `sources`.
    fn add(&self, set: &Watched, declared: &[String]);
    /// The runs in progress were stopped for a change.
    fn interrupted(&self) -> bool;
}

/// The run a check is for: its name, and the scope holding its argument
/// and matrix values (what identifies it across invocations).
#[derive(Clone, Copy)]
pub struct RunRef<'a> {
    pub name: &'a str,
    pub args: &'a Scope,
}

/// The sources of one run, for watching.
#[derive(Clone)]
pub struct Watched {
    /// The task's directory (absolute); the patterns are relative to it.
    pub dir: PathBuf,
    pub patterns: Arc<Patterns>,
}

/// Whether a run may be skipped, and what to record after it succeeded.
pub struct Check {
    root: PathBuf,
    /// The run's directory (absolute): its `outputs` are relative to it.
    pub dir: PathBuf,
    path: PathBuf,
    /// The record to write after a success, but its files: those are
    /// `sources` with `hashes`, joined only when it is written.
    record: Record,
    sources: Vec<glob::Found>,
    /// Each source's hash, and whether its stat can be trusted next time.
    hashes: Vec<(Digest, bool)>,
    /// Why the run must happen; `None` when it is up to date.
    pub stale: Option<String>,
    /// Source files seen, and how many of them were read.
    pub files: usize,
    pub read: usize,
    /// When the run is up to date: how its recorded success came about,
    /// and the values it captured and extracted then.
    pub recorded: Option<(How, std::collections::BTreeMap<String, String>)>,
}

impl Check {
    /// The run's fingerprint: the remote cache's key is made of it.
    pub fn fingerprint(&self) -> &Digest {
        &self.record.fingerprint
    }

    /// Record the run's success, how it came about, and the values it
    /// captured and extracted (what `tasks.NAME` shows after a skip). A
    /// record that cannot be written means the next invocation runs it
    /// again: a warning, never a failure.
    pub fn save(
        &self,
        how: How,
        values: std::collections::BTreeMap<String, String>,
    ) -> Result<(), String> {
        let files = self
            .sources
            .iter()
            .zip(&self.hashes)
            .map(|(found, (hash, trusted))| Entry {
                path: found.path.clone(),
                hash: *hash,
                stat: trusted.then_some(found.stat),
            })
            .collect();
        let record = Record {
            how,
            values,
            files,
            ..self.record.clone()
        };
        record::write(&self.root, &self.path, &record).map_err(|e| {
            format!(
                "cannot record the run in {}: {e}",
                self.path.parent().unwrap_or(&self.path).display()
            )
        })
    }
}

impl Fresh {
    pub fn new(root: &Path, force: bool, watch: Option<Arc<dyn SourceWatch>>) -> Fresh {
        Fresh {
            root: root.to_path_buf(),
            force,
            watch,
            seen: std::sync::Mutex::default(),
        }
    }

    /// `-B`: nothing is skipped, and the remote cache is not asked.
    pub fn forced(&self) -> bool {
        self.force
    }

    /// `-w` stopped the runs in progress to start them again.
    pub fn restarting(&self) -> bool {
        self.watch.as_ref().is_some_and(|w| w.interrupted())
    }

    /// Check a run of a task with `sources` whose directory is `dir`.
    pub fn check(
        &self,
        session: &Session,
        task: &Task,
        run: RunRef,
        scope: &Scope,
        dir: &Path,
    ) -> Result<Check, String> {
        let patterns = Arc::new(Patterns::new(&task.sources)?);
        if let Some(watch) = &self.watch {
            let set = Watched {
                dir: dir.to_path_buf(),
                patterns: Arc::clone(&patterns),
            };
            watch.add(&set, &task.sources);
        }
        let inputs = inputs_of(session, task, run, scope, &self.root, dir);
        let parts = inputs.parts();
        let path = record::path_for(&self.root, run.name, &identity(task, run));
        let (old, walked) = read_and_walk(&path, self.force, &patterns, dir);
        let (sources, hashes, read) = hash_sources(
            walked,
            &self.root,
            &inputs.dir,
            old.as_ref().map(|o| &o.files),
            &self.seen,
            racy_from(),
        );
        let fingerprint = fingerprint::fingerprint(
            &parts,
            sources
                .iter()
                .zip(&hashes)
                .map(|(found, (hash, _))| (found.path.as_str(), hash)),
        );
        let stale = if self.force {
            Some("-B was given".to_string())
        } else {
            match &old {
                None => Some("no earlier success is recorded".to_string()),
                Some(old) if old.fingerprint == fingerprint => missing_output(&task.outputs, dir),
                Some(old) => Some(
                    why_changed(old, &parts, &inputs.definition, &sources, &hashes)
                        .unwrap_or_else(|| "its inputs changed".into()),
                ),
            }
        };
        let recorded = match old {
            Some(old) if stale.is_none() => Some((old.how, old.values)),
            _ => None,
        };
        let record = Record::new(
            run.name.to_string(),
            fingerprint,
            parts,
            inputs.definition,
            Vec::new(),
        );
        Ok(Check {
            root: self.root.clone(),
            dir: dir.to_path_buf(),
            path,
            stale,
            files: sources.len(),
            read,
            recorded,
            record,
            sources,
            hashes,
        })
    }
}

/// The old record at `path` (none under `-B`) and the files the patterns
/// find under `dir`. A large record is read on a thread of its own while
/// the tree is walked: both cost about as much for a tree of 20,000 files.
fn read_and_walk(
    path: &Path,
    force: bool,
    patterns: &Patterns,
    dir: &Path,
) -> (Option<record::Recorded>, Vec<glob::Found>) {
    const ASIDE: u64 = 256 * 1024;
    if force {
        return (None, patterns.walk(dir));
    }
    let large = std::fs::metadata(path).is_ok_and(|m| m.len() >= ASIDE);
    if !large {
        return (record::read(path), patterns.walk(dir));
    }
    std::thread::scope(|scope| {
        let Ok(reading) = std::thread::Builder::new().spawn_scoped(scope, || record::read(path))
        else {
            return (record::read(path), patterns.walk(dir));
        };
        let walked = patterns.walk(dir);
        (reading.join().ok().flatten(), walked)
    })
}

/// A run's argument values, matrix values and words after `--`, by name:
/// what its templates see of the command line (not `root` or the
/// invocation directory, which differ between checkouts).
fn arg_values(task: &Task, run: RunRef) -> Vec<(String, String)> {
    let names = task
        .args
        .iter()
        .map(|a| a.name.as_str())
        .chain(task.matrix.iter().map(|m| m.name.as_str()))
        .chain(["extra"]);
    names
        .map(|name| {
            let value = run
                .args
                .values
                .get(name)
                .and_then(|v| serde_json::to_string(v).ok())
                .unwrap_or_default();
            (name.to_string(), value)
        })
        .collect()
}

/// What identifies a run across invocations: its task and argument values.
fn identity(task: &Task, run: RunRef) -> String {
    serde_json::json!([task.name, run.name, arg_values(task, run)]).to_string()
}

/// Everything but the files that decides whether `run` is up to date.
fn inputs_of(
    session: &Session,
    task: &Task,
    run: RunRef,
    scope: &Scope,
    root: &Path,
    dir: &Path,
) -> Inputs {
    let rel_dir = relative(root, dir);
    let shell = task.shell.as_ref().unwrap_or(&session.model.settings.shell);
    let mut declared: Vec<String> = task.sources.clone();
    declared.push("outputs".into());
    declared.extend(task.outputs.iter().cloned());
    declared.push("shell".into());
    declared.extend(shell.iter().cloned());

    // Rendered as the run will render them; a template that cannot render
    // yet (it reads what only the run produces) counts as written.
    let render = |t: &crate::model::Template, mode| {
        session
            .render(t, mode, scope, "a command")
            .unwrap_or_else(|_| t.source.clone())
    };
    let mut commands = Vec::new();
    for (section, steps) in [("run", &task.run), ("finally", &task.finally)] {
        commands.push(section.to_string());
        for step in steps {
            let text = match &step.kind {
                StepKind::Sh(t) => format!("sh {}", render(t, Mode::Shell)),
                StepKind::Cmd(elements) => {
                    let words: Vec<String> = elements
                        .iter()
                        .map(|t| {
                            session
                                .render_words(t, scope, "a command")
                                .map(|w| w.join("\0"))
                                .unwrap_or_else(|_| t.source.clone())
                        })
                        .collect();
                    format!("cmd {}", words.join("\0"))
                }
                StepKind::Pipe(stages) => {
                    let stages: Vec<String> =
                        stages.iter().map(|t| render(t, Mode::Shell)).collect();
                    format!("pipe {}", stages.join("\0"))
                }
                StepKind::Task(call) => format!("task {}", render(&call.template, Mode::Shell)),
            };
            commands.push(text);
            if let Some(d) = &step.dir {
                commands.push(format!("dir {}", render(d, Mode::Plain)));
            }
        }
    }

    let mut args = arg_values(task, run);
    args.push(("[run]".into(), run.name.to_string()));

    let mut names: Vec<&str> = session
        .model
        .env_of(task.unit)
        .into_iter()
        .chain(&task.env)
        .map(|e| e.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let env = names
        .into_iter()
        .map(|n| {
            let value = scope.env.get(n).cloned().unwrap_or_default();
            (n.to_string(), value)
        })
        .collect();
    let definition = task
        .definition
        .iter()
        .map(|(key, hash)| (key.to_string(), Digest(*hash)))
        .collect();
    Inputs {
        task: task.name.clone(),
        dir: rel_dir,
        declared,
        commands,
        args,
        env,
        definition,
    }
}

/// `path` relative to `root`, `/` separated; outside the root, as it is.
fn relative(root: &Path, path: &Path) -> String {
    let path = glob::normalize(path);
    let rel = path.strip_prefix(glob::normalize(root)).unwrap_or(&path);
    let text = rel.to_string_lossy().into_owned();
    if std::path::MAIN_SEPARATOR == '/' {
        text
    } else {
        text.replace(std::path::MAIN_SEPARATOR, "/")
    }
}

/// Hash every source file found (`walked`, paths relative to the task's
/// directory `rel_dir` under `root`), reusing the old record's hash of
/// each file whose stat did not change (or the hash this invocation made
/// of it, kept in `seen` under the same rule). Returns the files with
/// their paths relative to the root (sorted), each one's hash and whether
/// its stat can be trusted next time, and how many files were read.
/// A file that cannot be read gets a hash of the error, so that it never
/// matches a content and becomes readable again as a change.
fn hash_sources(
    mut walked: Vec<glob::Found>,
    root: &Path,
    rel_dir: &str,
    old: Option<&record::Files>,
    seen: &std::sync::Mutex<HashMap<String, (Stat, Digest)>>,
    racy_from: (i64, i64),
) -> (Vec<glob::Found>, Vec<(Digest, bool)>, usize) {
    // Taken only when the record has no hash for a file, and never while
    // a file is read, so checks in parallel do not wait for each other.
    let seen = || seen.lock().unwrap_or_else(|p| p.into_inner());
    // Paths relative to the root (`..` resolved, absolute kept), sorted
    // as the old record's entries are; the walk sorted them as found.
    if !rel_dir.is_empty() || walked.iter().any(|f| f.path.starts_with("..")) {
        for found in &mut walked {
            found.path = relative(Path::new(""), &Path::new(rel_dir).join(&found.path));
        }
        walked.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    }
    // Both lists are sorted by path: one pass over the old one finds each
    // file's entry (a miss only costs a read).
    let empty = record::Files::default();
    let mut known = old.unwrap_or(&empty).iter().peekable();
    let mut read = 0;
    let mut hashes = Vec::with_capacity(walked.len());
    for found in &walked {
        let (path, stat) = (found.path.as_str(), found.stat);
        while known.next_if(|k| k.path < path.as_bytes()).is_some() {}
        let trusted = stat.last_change() < racy_from;
        let cached = known
            .peek()
            .filter(|k| k.path == path.as_bytes() && k.stat == Some(stat))
            .map(|k| k.hash)
            .or_else(|| {
                let seen = seen();
                seen.get(path).filter(|(s, _)| *s == stat).map(|(_, h)| *h)
            });
        let hash = match cached {
            Some(hash) => hash,
            None => {
                read += 1;
                // An absolute path stays as it is in the join.
                match fingerprint::hash_file(&root.join(path)) {
                    Ok(hash) => {
                        if trusted {
                            seen().insert(path.to_string(), (stat, hash));
                        }
                        hash
                    }
                    // A file that cannot be read (no permission, or a name
                    // that is not UTF-8 and so cannot be named again) is
                    // known by its stat: any change to it still changes
                    // the fingerprint, where the error's text alone never
                    // would.
                    Err(e) => Digest(
                        *blake3::hash(format!("unreadable: {e}; {stat:?}").as_bytes()).as_bytes(),
                    ),
                }
            }
        };
        hashes.push((hash, trusted));
    }
    (walked, hashes, read)
}

/// Files changed since this time (seconds, nanoseconds) are not trusted.
fn racy_from() -> (i64, i64) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let from = now.saturating_sub(RACY);
    (from.as_secs() as i64, from.subsec_nanos() as i64)
}

/// The first difference between the old record and now, in words.
fn why_changed(
    old: &Recorded,
    parts: &fingerprint::Parts,
    definition: &[(String, Digest)],
    sources: &[glob::Found],
    hashes: &[(Digest, bool)],
) -> Option<String> {
    if old.parts.declared != parts.declared {
        return Some("its sources, outputs, directory or shell changed".into());
    }
    if old.parts.commands != parts.commands {
        return Some("its commands changed".into());
    }
    if old.parts.args != parts.args {
        return Some("its arguments changed".into());
    }
    if old.parts.env != parts.env {
        return Some("its env changed".into());
    }
    if old.parts.definition != parts.definition {
        let mut keys: Vec<&str> = definition
            .iter()
            .filter(|now| !old.definition.contains(now))
            .map(|(k, _)| k.as_str())
            .chain(
                old.definition
                    .iter()
                    .filter(|(k, _)| !definition.iter().any(|(n, _)| n == k))
                    .map(|(k, _)| k.as_str()),
            )
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let named: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
        return Some(match named.len() {
            0 => "its definition changed".to_string(),
            1 => format!("its {} changed", named[0]),
            _ => format!("its {} changed", named.join(", ")),
        });
    }
    let old_files: Vec<(String, Digest)> = old
        .files
        .iter()
        .map(|f| (String::from_utf8_lossy(f.path).into_owned(), f.hash))
        .collect();
    let before: HashMap<&str, Digest> = old_files.iter().map(|(p, h)| (p.as_str(), *h)).collect();
    let mut changes = Vec::new();
    for (found, (hash, _)) in sources.iter().zip(hashes) {
        match before.get(found.path.as_str()) {
            None => changes.push(format!("`{}` is new", found.path)),
            Some(h) if h != hash => changes.push(format!("`{}` changed", found.path)),
            Some(_) => {}
        }
    }
    let now: std::collections::HashSet<&str> = sources.iter().map(|f| f.path.as_str()).collect();
    for (path, _) in &old_files {
        if !now.contains(path.as_str()) {
            changes.push(format!("`{path}` was deleted"));
        }
    }
    match changes.len() {
        0 => None,
        1..=3 => Some(changes.join(", ")),
        n => Some(format!("{} and {} more", changes[..3].join(", "), n - 3)),
    }
}

/// The first of `outputs` (relative to `dir`) that does not exist.
fn missing_output(outputs: &[String], dir: &Path) -> Option<String> {
    for output in outputs.iter().filter(|o| !o.starts_with('!')) {
        let present = match Patterns::new(std::slice::from_ref(output)) {
            Ok(p) if output.contains(['*', '?', '[', '{']) => !p.walk(dir).is_empty(),
            _ => std::fs::symlink_metadata(dir.join(output)).is_ok(),
        };
        if !present {
            return Some(format!("output `{output}` is missing"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_check_in_one_invocation_reads_no_file_again() {
        let dir = tempfile::tempdir().unwrap();
        let old = filetime::FileTime::from_unix_time(1_000_000, 0);
        for name in ["a.c", "b.c"] {
            let path = dir.path().join(name);
            std::fs::write(&path, name).unwrap();
            filetime::set_file_mtime(&path, old).unwrap();
        }
        let patterns = Patterns::new(&["*.c".to_string()]).unwrap();
        let seen = std::sync::Mutex::default();
        // Trusted as files changed long ago would be.
        let hash_sources = |p: &Patterns, d: &Path, r, o, s| {
            let (_, hashes, read) = hash_sources(p.walk(d), d, r, o, s, (i64::MAX, 0));
            (hashes, read)
        };
        let (first, read) = hash_sources(&patterns, dir.path(), "", None, &seen);
        assert_eq!(read, 2);
        let (second, read) = hash_sources(&patterns, dir.path(), "", None, &seen);
        assert_eq!(read, 0);
        assert_eq!(first, second);
        // A change moves the stat (ctime at least): that file is read.
        std::fs::write(dir.path().join("a.c"), "changed").unwrap();
        let (third, read) = hash_sources(&patterns, dir.path(), "", None, &seen);
        assert_eq!(read, 1);
        assert_ne!(third[0].0, first[0].0);
    }
}
