//! `-w`: run the command line, then run it again whenever a source of a
//! run it made changes (the whole root, minus `.git`, `.tasker`, `target`
//! and what the root's `.gitignore` ignores, when no run declares
//! sources). Events within 200 ms are one change. A change during a run
//! stops every run in progress as SIGTERM would (whole process groups,
//! SIGKILL after the grace) and starts again. A stop signal ends it.
//!
//! notify's events are debounced here rather than by its debouncer crates,
//! which drop the kind of event: reading a file (as the up-to-date check
//! does) is an event too, and must not count as a change.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::fresh::{SourceWatch, Watched};

/// Events closer together than this are one change.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Directories whose changes never count when the whole root is watched.
const NOT_WATCHED: [&str; 3] = [".git", ".tasker", "target"];

#[derive(Default)]
struct Shared {
    /// Changed paths (relative to the root) not yet acted on.
    changed: Vec<String>,
    /// When the last of them came.
    last_change: Option<Instant>,
    /// The runs of an iteration are in progress.
    running: bool,
    /// The runs in progress were asked to stop for a change.
    interrupted: bool,
    /// A stop signal came while waiting.
    stop: bool,
    sets: Vec<Watched>,
    /// What each set was watched as (dir and patterns), to add each once.
    keys: HashSet<(PathBuf, Vec<String>)>,
    /// No run declares sources: the whole root counts.
    whole_root: Option<ignore::gitignore::Gitignore>,
}

/// The watcher of one `-w` invocation.
pub struct Watch {
    root: PathBuf,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    watcher: Mutex<RecommendedWatcher>,
    watched_dirs: Mutex<HashSet<PathBuf>>,
}

impl Watch {
    pub fn new(root: &Path) -> Result<Arc<Watch>, String> {
        let shared: Arc<(Mutex<Shared>, Condvar)> = Arc::default();
        let shared_events = Arc::clone(&shared);
        let root_for_events = root.to_path_buf();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else {
                return;
            };
            if !matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any
            ) {
                return;
            }
            let (lock, wake) = &*shared_events;
            let mut shared = lock.lock().unwrap();
            let mut counted = false;
            for path in &event.paths {
                if let Some(rel) = relevant(&shared, &root_for_events, path) {
                    counted = true;
                    if !shared.changed.contains(&rel) {
                        shared.changed.push(rel);
                    }
                }
            }
            if counted {
                shared.last_change = Some(Instant::now());
                // Under the lock: the main thread cannot have stopped
                // running and started listening for Ctrl-C meanwhile.
                if shared.running && !shared.interrupted {
                    shared.interrupted = true;
                    crate::stop::interrupt_runs();
                }
                wake.notify_all();
            }
        })
        .map_err(|e| format!("cannot watch for changes: {e}"))?;
        Ok(Arc::new(Watch {
            root: root.to_path_buf(),
            shared,
            watcher: Mutex::new(watcher),
            watched_dirs: Mutex::default(),
        }))
    }

    /// Watch `dir` and what is under it; a directory that does not exist
    /// yet is watched through its nearest existing ancestor.
    fn watch_dir(&self, dir: &Path) {
        let mut dir = dir.to_path_buf();
        while !dir.is_dir() {
            if !dir.pop() {
                return;
            }
        }
        let mut watched = self.watched_dirs.lock().unwrap();
        if watched.iter().any(|w| dir.starts_with(w)) {
            return;
        }
        let mut watcher = self.watcher.lock().unwrap();
        if watcher.watch(&dir, RecursiveMode::Recursive).is_ok() {
            watched.insert(dir);
        }
    }

    /// Run `iteration` (the whole command line) now and after every change,
    /// until a stop signal; returns the last status.
    pub fn run(
        &self,
        quiet: bool,
        iteration: &mut dyn FnMut() -> crate::error::Result<i32>,
    ) -> crate::error::Result<i32> {
        let (lock, wake) = &*self.shared;
        loop {
            {
                let mut shared = lock.lock().unwrap();
                shared.changed.clear();
                shared.last_change = None;
                shared.running = true;
                shared.interrupted = false;
            }
            let status = iteration();
            let interrupted = {
                let mut shared = lock.lock().unwrap();
                shared.running = false;
                shared.interrupted
            };
            if let Some(sig) = crate::stop::requested() {
                return status.map(|s| s.max(128 + sig));
            }
            let status = status?;
            if lock.lock().unwrap().sets.is_empty() {
                self.watch_whole_root();
            }
            if !interrupted {
                say(
                    quiet,
                    &format!(
                        "[watch] {}; waiting for changes (Ctrl-C ends)",
                        if status == 0 {
                            "done".to_string()
                        } else {
                            format!("failed (exit {status})")
                        }
                    ),
                );
            }
            // Wait for a change or a stop signal.
            let listening = {
                let shared = Arc::clone(&self.shared);
                crate::stop::listen(Arc::new(move |_| {
                    let (lock, wake) = &*shared;
                    lock.lock().unwrap().stop = true;
                    wake.notify_all();
                }))
            };
            let changed = {
                let mut shared = lock.lock().unwrap();
                loop {
                    if shared.stop {
                        drop(shared);
                        drop(listening);
                        return Ok(128 + crate::stop::requested().unwrap_or(libc::SIGINT));
                    }
                    // A change is whole once 200 ms passed without another.
                    let quiet_for = shared.last_change.map(|t| t.elapsed());
                    match quiet_for {
                        Some(q) if !shared.changed.is_empty() && q >= DEBOUNCE => break,
                        Some(q) if !shared.changed.is_empty() => {
                            shared = wake.wait_timeout(shared, DEBOUNCE - q).unwrap().0;
                        }
                        _ => shared = wake.wait(shared).unwrap(),
                    }
                }
                std::mem::take(&mut shared.changed)
            };
            drop(listening);
            say(
                quiet,
                &format!("[watch] {}; running again", describe(&changed)),
            );
        }
    }

    fn watch_whole_root(&self) {
        {
            let mut shared = self.shared.0.lock().unwrap();
            if shared.whole_root.is_some() {
                return;
            }
            let (ignored, _) = ignore::gitignore::Gitignore::new(self.root.join(".gitignore"));
            shared.whole_root = Some(ignored);
        }
        self.watch_dir(&self.root.clone());
    }
}

fn say(quiet: bool, line: &str) {
    if !quiet {
        let style = crate::style::Style::for_stderr();
        let _ = writeln!(std::io::stderr(), "{}", style.yellow(line));
    }
}

/// `` `a` changed ``, up to three paths, then how many more.
fn describe(changed: &[String]) -> String {
    let names: Vec<String> = changed.iter().take(3).map(|p| format!("`{p}`")).collect();
    let more = if changed.len() > 3 {
        format!(" and {} more", changed.len() - 3)
    } else {
        String::new()
    };
    format!("{}{more} changed", names.join(", "))
}

/// `path` relative to `base`, both absolute, with as many `..` as it takes
/// to climb out of `base`.
fn relative_to(base: &Path, path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    if !base.is_absolute() || !path.is_absolute() {
        return None;
    }
    let path = crate::glob::normalize(path);
    let mut base_parts = base.components().peekable();
    let mut path_parts = path.components().peekable();
    while let (Some(a), Some(b)) = (base_parts.peek(), path_parts.peek()) {
        if a != b {
            break;
        }
        base_parts.next();
        path_parts.next();
    }
    let mut out = PathBuf::new();
    for part in base_parts {
        if matches!(part, Component::Normal(_)) {
            out.push("..");
        }
    }
    out.extend(path_parts);
    Some(out)
}

/// The path relative to the root when a change of `path` counts.
fn relevant(shared: &Shared, root: &Path, path: &Path) -> Option<String> {
    // A pattern may climb out of its directory (`../shared/**`) or be
    // absolute: the path is tried relative to the directory, `..` and all,
    // and as it is.
    let in_sets = shared.sets.iter().any(|set| {
        let rel = relative_to(&crate::glob::normalize(&set.dir), path);
        rel.is_some_and(|rel| set.patterns.matches(&rel)) || set.patterns.matches(path)
    });
    let in_root = || {
        let ignored = shared.whole_root.as_ref()?;
        let rel = path.strip_prefix(root).ok()?;
        let hidden = rel
            .components()
            .any(|c| NOT_WATCHED.iter().any(|n| c.as_os_str() == *n));
        let ignored = ignored
            .matched_path_or_any_parents(rel, path.is_dir())
            .is_ignore();
        (!hidden && !ignored).then_some(())
    };
    if !in_sets && in_root().is_none() {
        return None;
    }
    // Outside the root: climbing out with `..` as a source pattern would,
    // or absolute when the two share nothing but `/`.
    let depth = root.components().count().saturating_sub(1);
    let rel = relative_to(root, path)
        .filter(|rel| {
            rel.components()
                .take_while(|c| c.as_os_str() == "..")
                .count()
                < depth
        })
        .unwrap_or_else(|| path.to_path_buf());
    Some(rel.to_string_lossy().into_owned())
}

impl SourceWatch for Watch {
    /// The runs in progress were stopped for a change (they start again):
    /// their cancel is no failure to report.
    fn interrupted(&self) -> bool {
        self.shared.0.lock().unwrap().interrupted
    }

    /// Watch the sources of a run (called when the run is checked, before
    /// its steps start).
    fn add(&self, set: &Watched, declared: &[String]) {
        {
            let mut shared = self.shared.0.lock().unwrap();
            if !shared.keys.insert((set.dir.clone(), declared.to_vec())) {
                return;
            }
            shared.sets.push(set.clone());
        }
        for dir in set.patterns.watch_roots() {
            self.watch_dir(&crate::glob::normalize(&set.dir.join(dir)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_outside_the_base_climbs_with_dots() {
        let rel = |base: &str, path: &str| relative_to(Path::new(base), Path::new(path));
        assert_eq!(
            rel("/w/main", "/w/main/src/a"),
            Some(PathBuf::from("src/a"))
        );
        assert_eq!(
            rel("/w/main", "/w/shared/a.txt"),
            Some(PathBuf::from("../shared/a.txt"))
        );
        assert_eq!(
            rel("/w/main/sub", "/etc/x"),
            Some(PathBuf::from("../../../etc/x"))
        );
        assert_eq!(rel("w", "/w"), None);
    }
}
