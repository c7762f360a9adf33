//! The remote cache (SPEC 7): the results of runs with `sources`, shared
//! between machines through a server that speaks Turborepo's remote cache
//! API. A run the local record would run asks it first (`fetch`); a run
//! that then succeeded is uploaded in the background (`upload`), and
//! `finish` waits for the uploads before tasker exits.
//!
//! A fault never fails a build: it is a warning and a miss, and after the
//! first one that says the server cannot be reached, is too slow (a
//! request past its deadline) or refuses the token, nothing more is asked
//! in this invocation. Until one exchange has worked, requests go one at a
//! time, so a dead server costs one timeout.

mod artifact;
mod http;
mod sign;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use artifact::{frames, Log, Refusal};
use http::{Client, Fault};

use crate::fresh::fingerprint::Digest;
use crate::model::CacheUse;

/// Requests in flight at once, once the server has answered.
const PARALLEL: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Read,
    ReadWrite,
}

/// Where the cache is and how tasker may use it.
#[derive(Clone, Debug)]
pub struct Config {
    pub url: String,
    pub team: String,
    pub token: Option<String>,
    pub signature_key: Option<Vec<u8>>,
    pub mode: Mode,
}

impl Config {
    /// The configuration from the file's `[settings] remote_cache`, the
    /// environment (which wins) and `--remote-cache`. `None` when the cache
    /// is off; an error in words when it is asked for and cannot be used.
    pub fn resolve(
        file: Option<&crate::model::RemoteCache>,
        flag: Option<CacheUse>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<Config>, String> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let mode = match flag {
            Some(CacheUse::Off) => return Ok(None),
            Some(CacheUse::Read) => Mode::Read,
            Some(CacheUse::ReadWrite) | None => Mode::ReadWrite,
        };
        let url = env("TASKER_REMOTE_CACHE_URL").or_else(|| file.and_then(|f| f.url.clone()));
        let Some(url) = url else {
            return match flag {
                Some(flag) => Err(format!(
                    "--remote-cache {} needs a server: set `remote_cache = {{ url = \"...\", team = \"...\" }}` in [settings], or TASKER_REMOTE_CACHE_URL",
                    clap::ValueEnum::to_possible_value(&flag).map_or_else(String::new, |v| v.get_name().to_string())
                )),
                None => Ok(None),
            };
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "the remote cache URL `{url}` must start with http:// or https://"
            ));
        }
        let team = env("TASKER_REMOTE_CACHE_TEAM").or_else(|| file.and_then(|f| f.team.clone()));
        let Some(team) = team else {
            return Err(
                "the remote cache needs a team: set `team` in [settings] remote_cache, or TASKER_REMOTE_CACHE_TEAM"
                    .into(),
            );
        };
        Ok(Some(Config {
            url,
            team,
            token: env("TASKER_REMOTE_CACHE_TOKEN"),
            signature_key: env("TASKER_REMOTE_CACHE_SIGNATURE_KEY").map(String::into_bytes),
            mode,
        }))
    }
}

/// The name an artifact has on the server: the run's fingerprint and the
/// artifact format, hashed.
pub fn key(fingerprint: &Digest) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(artifact::FORMAT.as_bytes());
    hasher.update(&[0]);
    hasher.update(&fingerprint.0);
    hasher.finalize().to_hex().to_string()
}

/// What the cache said about one run, for `--timings` and `-l --json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheState {
    Hit,
    Miss,
    /// Not asked, or no answer: the server is down or refused tasker.
    Unavailable,
}

impl CacheState {
    pub fn name(self) -> &'static str {
        match self {
            CacheState::Hit => "hit",
            CacheState::Miss => "miss",
            CacheState::Unavailable => "unavailable",
        }
    }
}

/// An artifact downloaded (and its tag checked) into a scratch file.
pub struct Download {
    pub file: File,
    pub bytes: u64,
    pub took: Duration,
}

/// The answer to `fetch`.
pub enum Fetched {
    Hit(Download),
    Miss,
    /// Nothing to be had from the server in this invocation (warned).
    Unavailable,
    /// A stop request or a cancel came while waiting.
    Stopped,
}

/// Where a lookup's answer lands.
type Slot = Arc<Mutex<Option<Fetched>>>;

/// Whether the server has answered yet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Health {
    /// Nothing asked yet: the first request goes alone.
    Unknown,
    Probing,
    Up,
    /// Unreachable or refusing the token: nothing more is asked.
    Down,
}

struct State {
    health: Health,
    /// A 401/403 answered an upload: no more uploads.
    uploads_refused: bool,
    in_flight: usize,
    /// Lookups asked for (by a prefetch or a run), by key, until taken.
    lookups: HashMap<String, Slot>,
    /// Keys waiting for a lookup thread, the most urgent first.
    queue: VecDeque<String>,
    /// Lookup threads running (at most PARALLEL).
    lookers: usize,
    /// What the cache said about each run, by run name.
    states: BTreeMap<String, CacheState>,
    /// Warnings already given, so that each is given once.
    warned: Vec<&'static str>,
}

/// Says a warning, with the run it concerns when there is one.
pub type Warn = Arc<dyn Fn(Option<&str>, &str) + Send + Sync>;
/// Says a `-v` note about a run.
pub type Note = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// The remote cache of one invocation.
pub struct Remote {
    client: Client,
    mode: Mode,
    signature_key: Option<Vec<u8>>,
    has_token: bool,
    url: String,
    state: Mutex<State>,
    changed: Condvar,
    warn: Warn,
    /// `-v`: sizes and times of uploads.
    verbose: Option<Note>,
    uploads: Mutex<Vec<JoinHandle<()>>>,
}

impl Remote {
    pub fn new(config: Config, warn: Warn, verbose: Option<Note>) -> Arc<Remote> {
        Arc::new(Remote {
            client: Client::new(&config.url, &config.team, config.token.clone()),
            mode: config.mode,
            signature_key: config.signature_key,
            has_token: config.token.is_some(),
            url: config.url,
            state: Mutex::new(State {
                health: Health::Unknown,
                uploads_refused: false,
                in_flight: 0,
                lookups: HashMap::new(),
                queue: VecDeque::new(),
                lookers: 0,
                states: BTreeMap::new(),
                warned: Vec::new(),
            }),
            changed: Condvar::new(),
            warn,
            verbose,
            uploads: Mutex::new(Vec::new()),
        })
    }

    /// Say a warning (with the run it concerns).
    pub fn warn(&self, run: Option<&str>, text: &str) {
        (self.warn)(run, text);
    }

    /// Whether runs that miss are uploaded after they succeed.
    pub fn writes(&self) -> bool {
        self.mode == Mode::ReadWrite && !self.lock().uploads_refused
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remember what the cache said about a run.
    pub fn note_state(&self, run: &str, state: CacheState) {
        self.lock().states.insert(run.to_string(), state);
    }

    /// What the cache said about a run, if it was asked.
    pub fn state_of(&self, run: &str) -> Option<CacheState> {
        self.lock().states.get(run).copied()
    }

    /// Start looking for `key` in the background, unless a lookup for it
    /// is under way already.
    pub fn prefetch(self: &Arc<Self>, key: &str) {
        self.start(key, false);
    }

    /// The slot where the lookup of `key` will land, queued now unless it
    /// is known already; `urgent` puts it first (a run waits for it), or
    /// moves it there when it still waits in the queue.
    fn start(self: &Arc<Self>, key: &str, urgent: bool) -> Slot {
        let mut state = self.lock();
        if let Some(slot) = state.lookups.get(key) {
            let slot = Arc::clone(slot);
            if urgent {
                if let Some(at) = state.queue.iter().position(|k| k == key) {
                    let key = state.queue.remove(at).unwrap_or_default();
                    state.queue.push_front(key);
                }
            }
            return slot;
        }
        let slot: Slot = Arc::new(Mutex::new(None));
        state.lookups.insert(key.to_string(), Arc::clone(&slot));
        if urgent {
            state.queue.push_front(key.to_string());
        } else {
            state.queue.push_back(key.to_string());
        }
        if state.lookers < PARALLEL {
            state.lookers += 1;
            let me = Arc::clone(self);
            std::thread::spawn(move || me.look());
        }
        slot
    }

    /// A lookup thread: download what the queue asks for until it is
    /// empty.
    fn look(&self) {
        loop {
            let (key, slot) = {
                let mut state = self.lock();
                let Some(key) = state.queue.pop_front() else {
                    state.lookers -= 1;
                    return;
                };
                let slot = state.lookups.get(&key).cloned();
                (key, slot)
            };
            // A lookup given up meanwhile (a stopped run) is not made.
            let Some(slot) = slot else {
                continue;
            };
            let fetched = self.download(&key);
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(fetched);
            let _held = self.lock();
            self.changed.notify_all();
        }
    }

    /// The artifact of `key`: from a lookup under way, or asked now.
    /// `stopping` ends the wait at once (Ctrl-C, a failure elsewhere).
    pub fn fetch(self: &Arc<Self>, key: &str, stopping: &dyn Fn() -> bool) -> Fetched {
        let slot = self.start(key, true);
        let mut state = self.lock();
        loop {
            if let Some(fetched) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
                state.lookups.remove(key);
                return fetched;
            }
            if stopping() {
                state.lookups.remove(key);
                return Fetched::Stopped;
            }
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(20))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Whether the server holds `key`, for listings: `None` when it
    /// cannot say.
    pub fn exists(&self, key: &str) -> Option<bool> {
        if !self.admit() {
            return None;
        }
        let result = self.client.exists(key);
        self.settle(&result);
        match result {
            Ok(found) => Some(found),
            Err(fault) => {
                self.fault(None, &fault, "ask");
                None
            }
        }
    }

    /// Wait for a turn to ask the server: `false` when it is down.
    fn admit(&self) -> bool {
        let mut state = self.lock();
        loop {
            match state.health {
                Health::Down => return false,
                Health::Unknown => {
                    state.health = Health::Probing;
                    state.in_flight += 1;
                    return true;
                }
                Health::Up if state.in_flight < PARALLEL => {
                    state.in_flight += 1;
                    return true;
                }
                Health::Up | Health::Probing => {
                    state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }

    /// An exchange ended: whether the server answered decides its health.
    fn settle<T>(&self, result: &Result<T, Fault>) {
        let mut state = self.lock();
        state.in_flight -= 1;
        // A refused token is an answer too: `fault` decides what it stops.
        if matches!(
            result,
            Err(Fault::Network(_) | Fault::BrokeOff(_) | Fault::Late(_) | Fault::Server(_))
        ) {
            state.health = Health::Down;
        } else if state.health == Health::Probing && !matches!(result, Err(Fault::Stopped)) {
            state.health = Health::Up;
        } else if state.health == Health::Probing {
            state.health = Health::Unknown;
        }
        self.changed.notify_all();
    }

    fn download(&self, key: &str) -> Fetched {
        if !self.admit() {
            return Fetched::Unavailable;
        }
        let started = Instant::now();
        let result = tempfile::tempfile()
            .map_err(|e| Fault::Local(format!("cannot keep a download: {e}")))
            .and_then(|file| {
                let mut tagged = Tagged {
                    file,
                    tagger: self.tagger(key),
                };
                let got = self.client.get(key, &mut tagged)?;
                Ok(got.map(|got| (tagged, got)))
            });
        self.settle(&result);
        let (tagged, got) = match result {
            Ok(Some(found)) => found,
            Ok(None) => return Fetched::Miss,
            Err(Fault::Stopped) => return Fetched::Stopped,
            Err(fault) => {
                return match self.fault(None, &fault, "download") {
                    true => Fetched::Unavailable,
                    false => Fetched::Miss,
                };
            }
        };
        let Tagged { mut file, tagger } = tagged;
        if let Some(tagger) = tagger {
            let verified = got.tag.as_deref().is_some_and(|tag| tagger.verify(tag));
            if !verified {
                let why = match got.tag {
                    None => "has no signature tag",
                    Some(_) => "has a signature tag that does not match",
                };
                (self.warn)(
                    None,
                    &format!("the remote cache's artifact {key} {why}; it is ignored"),
                );
                return Fetched::Miss;
            }
        }
        use std::io::Seek;
        if file.rewind().is_err() {
            return Fetched::Miss;
        }
        Fetched::Hit(Download {
            file,
            bytes: got.bytes,
            took: started.elapsed(),
        })
    }

    fn tagger(&self, key: &str) -> Option<sign::Tagger> {
        let secret = self.signature_key.as_deref()?;
        Some(sign::Tagger::new(secret, key, self.client.team()))
    }

    /// Say what went wrong, once per kind; `true` when the server is now
    /// out of this invocation.
    fn fault(&self, run: Option<&str>, fault: &Fault, doing: &str) -> bool {
        let (kind, text, gone) = match fault {
            Fault::BrokeOff(why) if doing == "upload" => (
                "network",
                format!(
                    "the remote cache at {} broke off an upload ({why}; a server's limit on the size of a request does this, such as BODY_LIMIT of turborepo-remote-cache); it is not asked again in this invocation",
                    self.url
                ),
                true,
            ),
            Fault::Network(why) | Fault::BrokeOff(why) => (
                "network",
                format!(
                    "the remote cache at {} cannot be reached ({why}); it is not asked again in this invocation",
                    self.url
                ),
                true,
            ),
            Fault::Late(why) => (
                "network",
                format!(
                    "the remote cache at {} is too slow ({why}); it is not asked again in this invocation",
                    self.url
                ),
                true,
            ),
            Fault::Server(_) => (
                "server",
                format!(
                    "the remote cache at {}: {fault}; it is not asked again in this invocation",
                    self.url
                ),
                true,
            ),
            Fault::Auth(_) if !self.has_token => (
                "auth",
                format!(
                    "the remote cache at {} needs a token: set TASKER_REMOTE_CACHE_TOKEN",
                    self.url
                ),
                doing != "upload",
            ),
            Fault::Auth(status) => (
                "auth",
                format!(
                    "the remote cache at {} refused the token in TASKER_REMOTE_CACHE_TOKEN (HTTP {status}){}",
                    self.url,
                    if doing == "upload" { "; nothing more is uploaded" } else { "" }
                ),
                doing != "upload",
            ),
            Fault::Refused(413) => (
                "refused",
                format!("the remote cache could not {doing} an artifact: {fault} (larger than the server takes; turborepo-remote-cache's limit is BODY_LIMIT)"),
                false,
            ),
            Fault::Refused(_) => (
                "refused",
                format!("the remote cache could not {doing} an artifact: {fault}"),
                false,
            ),
            Fault::Local(why) => ("local", why.clone(), false),
            Fault::Stopped => return false,
        };
        let mut state = self.lock();
        if matches!(fault, Fault::Auth(_)) {
            if gone {
                state.health = Health::Down;
            } else {
                state.uploads_refused = true;
            }
        }
        let first = !state.warned.contains(&kind);
        if first {
            state.warned.push(kind);
        }
        drop(state);
        if first || kind == "refused" || kind == "local" {
            (self.warn)(run, &text);
        }
        gone
    }

    /// Pack a run's outputs, output and values into an artifact (in this
    /// thread: the outputs are read before anything else can change them).
    pub fn pack(
        &self,
        key: &str,
        run: &str,
        dir: &std::path::Path,
        outputs: &[String],
        log: Option<Log>,
        results: BTreeMap<String, String>,
    ) -> Result<artifact::Packed, String> {
        if log.as_ref().is_some_and(|l| l.broken) {
            return Err("its output could not be kept whole".into());
        }
        let meta = artifact::Meta {
            format: artifact::FORMAT.into(),
            run: run.to_string(),
            results,
        };
        artifact::pack(
            dir,
            outputs,
            log.map(Log::into_file),
            &meta,
            self.tagger(key),
        )
        .map_err(|e| format!("cannot pack its outputs: {e}"))
    }

    /// Upload a packed artifact in the background.
    pub fn upload(
        self: &Arc<Self>,
        key: String,
        run: String,
        packed: artifact::Packed,
        took: Duration,
    ) {
        let me = Arc::clone(self);
        let handle = std::thread::spawn(move || me.upload_now(&key, &run, packed, took));
        self.uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
    }

    fn upload_now(&self, key: &str, run: &str, mut packed: artifact::Packed, took: Duration) {
        if !self.writes() || !self.admit() {
            return;
        }
        let started = Instant::now();
        let result = self.client.put(
            key,
            &mut packed.file,
            packed.size,
            packed.tag.as_deref(),
            took,
        );
        self.settle(&result);
        match result {
            Ok(()) => {
                if let Some(note) = &self.verbose {
                    note(
                        run,
                        &format!(
                            "uploaded to the remote cache ({}, {} entries, in {})",
                            human_bytes(packed.size),
                            packed.entries,
                            crate::outcome::human_duration(started.elapsed())
                        ),
                    );
                }
            }
            Err(fault) => {
                self.fault(Some(run), &fault, "upload");
            }
        }
    }

    /// Wait for the uploads to end; a stop request ends the wait at once
    /// (then `false`: the uploads still under way are abandoned).
    pub fn finish(&self) -> bool {
        let handles = std::mem::take(&mut *self.uploads.lock().unwrap_or_else(|p| p.into_inner()));
        for handle in handles {
            while !handle.is_finished() {
                if crate::stop::requested().is_some() {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = handle.join();
        }
        // The signal may itself have ended an upload (its system call
        // interrupted): the request counts all the same.
        crate::stop::requested().is_none()
    }
}

/// A download on its way to a scratch file, fed to the tag as it passes.
struct Tagged {
    file: File,
    tagger: Option<sign::Tagger>,
}

impl std::io::Write for Tagged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        if let Some(t) = &mut self.tagger {
            t.update(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Restore a downloaded artifact's outputs under `dir`.
pub fn restore(
    download: Download,
    dir: &std::path::Path,
    outputs: &[String],
    stopping: &dyn Fn() -> bool,
) -> Result<artifact::Restored, Refusal> {
    artifact::restore(download.file, dir, outputs, stopping)
}

/// `1.2 MiB`, `340 KiB`, `12 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(
        file: Option<(&str, &str)>,
        flag: Option<CacheUse>,
        env: &[(&str, &str)],
    ) -> Result<Option<Config>, String> {
        let file = file.map(|(url, team)| crate::model::RemoteCache {
            url: Some(url.to_string()),
            team: Some(team.to_string()),
        });
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Config::resolve(file.as_ref(), flag, &lookup)
    }

    #[test]
    fn the_environment_wins_over_the_file_and_the_flag_decides_the_mode() {
        let c = resolve(Some(("http://a", "t")), None, &[])
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.url.as_str(), c.team.as_str(), c.mode),
            ("http://a", "t", Mode::ReadWrite)
        );
        assert!(c.token.is_none());
        let c = resolve(
            Some(("http://a", "t")),
            Some(CacheUse::Read),
            &[
                ("TASKER_REMOTE_CACHE_URL", "https://b"),
                ("TASKER_REMOTE_CACHE_TOKEN", "x"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.url.as_str(), c.mode, c.token.as_deref()),
            ("https://b", Mode::Read, Some("x"))
        );
        assert!(resolve(Some(("http://a", "t")), Some(CacheUse::Off), &[])
            .unwrap()
            .is_none());
        assert!(resolve(None, None, &[]).unwrap().is_none());
        assert!(resolve(None, Some(CacheUse::Read), &[])
            .unwrap_err()
            .contains("needs a server"));
        assert!(
            resolve(None, None, &[("TASKER_REMOTE_CACHE_URL", "http://a")])
                .unwrap_err()
                .contains("needs a team")
        );
        assert!(resolve(Some(("ftp://a", "t")), None, &[])
            .unwrap_err()
            .contains("http://"));
    }

    #[test]
    fn keys_differ_by_fingerprint() {
        let a = key(&Digest([1; 32]));
        assert_eq!(a.len(), 64);
        assert_ne!(a, key(&Digest([2; 32])));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(100 << 20), "100 MiB");
    }
}
