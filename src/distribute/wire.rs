//! What travels through the queue (SPEC 11): a run as names and values
//! (never commands), and its result back. Both are JSON. With
//! `TASKER_QUEUE_SECRET`, each carries an HMAC-SHA256 tag over its
//! content (`tag`), as Celery's message signing does (SPEC 11).

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{Error, Kind, SourceFile, Span};
use crate::model::Model;
use crate::outcome::{Failure, Outcome, Reason};

/// One run, as the coordinator planned it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSpec {
    /// The run's id: its keys are `NAMESPACE:run:ID:…`.
    pub id: String,
    /// The invocation that waits for it (its lease key).
    pub coordinator: String,
    pub file_hash: String,
    pub version: String,
    pub task: String,
    /// `test[shard=3]`: how the coordinator names the run.
    pub name: String,
    pub args: BTreeMap<String, serde_json::Value>,
    pub matrix: BTreeMap<String, serde_json::Value>,
    pub extra: Vec<String>,
    /// `--set` values.
    pub set: Vec<(String, String)>,
    /// The `tasks.NAME` values the run's templates read.
    pub tasks: BTreeMap<String, serde_json::Value>,
    /// `retries + 1`: attempts in all, lost leases counted.
    pub attempts: u32,
    /// The coordinator echoes commands (no `-q`).
    pub echo: bool,
    pub verbose: bool,
    /// `-q`: no notes from tasker about the run.
    pub quiet: bool,
}

/// How a run ended, as a worker reports it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunResult {
    pub worker: String,
    pub outcome: Ended,
    /// How long the run took on its worker; none when no worker ran it
    /// to its end (refused, or lost with its workers): the coordinator
    /// then shows the time it waited.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// What `tasks.NAME` shows.
    #[serde(default)]
    pub values: Option<serde_json::Value>,
    /// A `finally` that failed after the run failed or was cancelled.
    #[serde(default)]
    pub finally: Option<WireFailure>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Ended {
    Success,
    Skipped { why: String },
    Failed { failure: WireFailure },
    Cancelled,
    NotRun { why: String },
    Stopped,
    Restored,
    UpToDate,
}

/// A failure, kept as the coordinator's summary and exit status need it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireFailure {
    pub status: i32,
    pub message: String,
    /// A located error, shown whole.
    #[serde(default)]
    pub error: Option<Box<WireError>>,
    #[serde(default)]
    pub step: Option<String>,
    #[serde(default)]
    pub in_finally: bool,
    #[serde(default)]
    pub timed_out_ms: Option<u64>,
}

/// A located error on its way back from a worker, in parts, so that the
/// coordinator renders it as its own (in colour on its terminal). The
/// file it points into is named by its unit, since the worker's files are
/// the coordinator's (their hash was checked); another file (a dotenv
/// file) travels whole.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireError {
    /// `None` for a usage error (status 2).
    pub run_status: Option<i32>,
    pub message: String,
    pub label: Option<String>,
    pub help: Vec<String>,
    pub span: Option<WireSpan>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WireSpan {
    pub start: usize,
    pub end: usize,
    /// The unit (`Model::units`) whose file it is.
    pub unit: Option<usize>,
    /// The file as shown, and its text, when it is no unit's.
    pub display: String,
    pub text: Option<String>,
}

impl WireError {
    fn of(e: &Error, model: &Model) -> WireError {
        let span = e.span.as_ref().map(|span| {
            let unit = model.units.iter().position(|u| {
                std::sync::Arc::ptr_eq(&u.file, &span.file) || u.file.path == span.file.path
            });
            WireSpan {
                start: span.range.start,
                end: span.range.end,
                unit,
                display: span.file.display.clone(),
                text: unit.is_none().then(|| span.file.text.clone()),
            }
        });
        WireError {
            run_status: match e.kind {
                Kind::Usage => None,
                Kind::Run(status) => Some(status),
            },
            message: e.message.clone(),
            label: e.label.clone(),
            help: e.help.clone(),
            span,
        }
    }

    fn to_error(&self, model: &Model) -> Error {
        let span = self.span.as_ref().and_then(|s| {
            let file = match (s.unit.and_then(|u| model.units.get(u)), &s.text) {
                (Some(unit), _) => std::sync::Arc::clone(&unit.file),
                (None, Some(text)) => std::sync::Arc::new(SourceFile {
                    display: s.display.clone(),
                    path: s.display.clone().into(),
                    text: text.clone(),
                }),
                (None, None) => return None,
            };
            // Out of the file's bounds, the place is left out rather than
            // shown wrong.
            (s.start <= s.end && s.end <= file.text.len()).then(|| Span::new(&file, s.start..s.end))
        });
        Error {
            kind: self.run_status.map_or(Kind::Usage, Kind::Run),
            message: self.message.clone(),
            span,
            label: self.label.clone(),
            help: self.help.clone(),
        }
    }
}

impl WireFailure {
    pub fn of(f: &Failure, model: &Model) -> WireFailure {
        let (error, timed_out_ms) = match &f.reason {
            Reason::Diagnostic(e) => (Some(Box::new(WireError::of(e, model))), None),
            Reason::TimedOut(limit) => (None, Some(limit.as_millis() as u64)),
            _ => (None, None),
        };
        WireFailure {
            status: f.status(),
            message: f.reason.to_string(),
            error,
            step: f.step.clone(),
            in_finally: f.in_finally,
            timed_out_ms,
        }
    }

    /// A failure that points at no file (any reason but a diagnostic),
    /// made by a worker or the queue rather than by a run.
    pub fn plain(reason: &Reason) -> WireFailure {
        WireFailure {
            status: reason.status(),
            message: reason.to_string(),
            error: None,
            step: None,
            in_finally: false,
            timed_out_ms: None,
        }
    }

    pub fn to_failure(&self, model: &Model) -> Failure {
        let reason = match (&self.error, self.timed_out_ms) {
            (Some(e), _) => Reason::Diagnostic(Box::new(e.to_error(model))),
            (None, Some(ms)) => Reason::TimedOut(Duration::from_millis(ms)),
            (None, None) => Reason::Remote {
                status: self.status,
                message: self.message.clone(),
            },
        };
        Failure {
            reason,
            step: self.step.clone(),
            in_finally: self.in_finally,
        }
    }
}

impl Ended {
    pub fn of(outcome: &Outcome, model: &Model) -> Ended {
        match outcome {
            Outcome::Success => Ended::Success,
            Outcome::Skipped(why) => Ended::Skipped { why: why.clone() },
            Outcome::Failed(f) => Ended::Failed {
                failure: WireFailure::of(f, model),
            },
            Outcome::Cancelled => Ended::Cancelled,
            Outcome::NotRun(why) => Ended::NotRun { why: why.clone() },
            Outcome::Stopped => Ended::Stopped,
            Outcome::Restored => Ended::Restored,
            Outcome::UpToDate => Ended::UpToDate,
        }
    }

    pub fn to_outcome(&self, model: &Model) -> Outcome {
        match self {
            Ended::Success => Outcome::Success,
            Ended::Skipped { why } => Outcome::Skipped(why.clone()),
            Ended::Failed { failure } => Outcome::Failed(failure.to_failure(model)),
            Ended::Cancelled => Outcome::Cancelled,
            Ended::NotRun { why } => Outcome::NotRun(why.clone()),
            Ended::Stopped => Outcome::Stopped,
            Ended::Restored => Outcome::Restored,
            Ended::UpToDate => Outcome::UpToDate,
        }
    }
}

impl RunResult {
    /// A run that failed before it could start, saying why.
    pub fn failed(worker: &str, reason: &Reason) -> RunResult {
        RunResult {
            worker: worker.to_string(),
            outcome: Ended::Failed {
                failure: WireFailure::plain(reason),
            },
            duration_ms: None,
            values: None,
            finally: None,
        }
    }
}

/// The shared secret of a queue (`TASKER_QUEUE_SECRET`).
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    pub fn from_env() -> Option<Secret> {
        std::env::var("TASKER_QUEUE_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
            .map(|s| Secret(s.into_bytes()))
    }

    /// The tag of `body`, for what `kind` says it is: a run's tag never
    /// passes for a result's.
    fn tag(&self, kind: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new_from_slice(&[]).unwrap());
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(body);
        mac
    }
}

/// A message that may carry a tag: sent as `TAG JSON` with a secret (the
/// tag over the JSON's exact bytes), as `JSON` without.
pub trait Tagged: Serialize + serde::de::DeserializeOwned {
    const KIND: &'static str;

    /// The text to send.
    fn seal(&self, secret: Option<&Secret>) -> String {
        let body = serde_json::to_string(self).unwrap_or_default();
        match secret {
            Some(secret) => {
                let tag = secret
                    .tag(Self::KIND, body.as_bytes())
                    .finalize()
                    .into_bytes();
                format!("{} {body}", hex(&tag))
            }
            None => body,
        }
    }

    /// The message in `text`, whether signed or not.
    fn read(text: &str) -> Option<Self> {
        serde_json::from_str(split(text).1).ok()
    }

    /// Whether `text` carries the right tag (always, without a secret);
    /// compared in constant time.
    fn verify(text: &str, secret: Option<&Secret>) -> Result<(), &'static str> {
        let Some(secret) = secret else {
            return Ok(());
        };
        let (tag, body) = split(text);
        let Some(tag) = tag else {
            return Err("it is not signed, and TASKER_QUEUE_SECRET is set");
        };
        match unhex(tag) {
            Some(bytes)
                if secret
                    .tag(Self::KIND, body.as_bytes())
                    .verify_slice(&bytes)
                    .is_ok() =>
            {
                Ok(())
            }
            _ => Err("its signature does not match TASKER_QUEUE_SECRET"),
        }
    }
}

/// The tag and the JSON of a message.
fn split(text: &str) -> (Option<&str>, &str) {
    if text.starts_with('{') {
        return (None, text);
    }
    match text.split_once(' ') {
        Some((tag, body)) => (Some(tag), body),
        None => (None, text),
    }
}

impl Tagged for RunSpec {
    const KIND: &'static str = "tasker-run";
}

impl Tagged for RunResult {
    const KIND: &'static str = "tasker-result";
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// A template value as JSON, and back.
pub fn to_json(value: &minijinja::Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

pub fn from_json(value: &serde_json::Value) -> minijinja::Value {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_comes_back_with_its_status_words_and_step() {
        let local = Failure {
            reason: Reason::Exit(3),
            step: Some("false".into()),
            in_finally: false,
        };
        let model = model();
        let back = Ended::of(&Outcome::Failed(local.clone()), &model);
        let json = serde_json::to_string(&back).unwrap();
        let back: Ended = serde_json::from_str(&json).unwrap();
        let Outcome::Failed(f) = back.to_outcome(&model) else {
            panic!("not a failure");
        };
        assert_eq!(f.status(), 3);
        assert_eq!(f.reason.to_string(), "exit status 3");
        assert_eq!(f.step.as_deref(), Some("false"));
        let timed = Failure::new(Reason::TimedOut(Duration::from_secs(2)), None);
        assert_eq!(WireFailure::of(&timed, &model).to_failure(&model), timed);
    }

    fn model() -> Model {
        let text = "[tasks.a]\nrun = \"{{ nope }}\"\n";
        crate::file::load_str(text, "tasks.toml", std::path::Path::new(".")).unwrap()
    }

    #[test]
    fn a_located_error_comes_back_whole_pointing_into_the_same_file() {
        let model = model();
        let run = &model.tasks[0].run[0];
        let crate::model::StepKind::Sh(template) = &run.kind else {
            panic!("not a script");
        };
        let at_file = Error::at(&template.span, "unknown name `nope`")
            .with_label("here")
            .with_help("define it");
        let elsewhere = SourceFile {
            display: ".env".into(),
            path: ".env".into(),
            text: "A\n".into(),
        };
        let at_dotenv = Error::at(&Span::new(&std::sync::Arc::new(elsewhere), 0..1), "bad");
        for error in [at_file, at_dotenv, Error::run(3, "no place")] {
            let local = Failure::new(error, Some("step".into()));
            let json = serde_json::to_string(&WireFailure::of(&local, &model)).unwrap();
            let back: WireFailure = serde_json::from_str(&json).unwrap();
            assert_eq!(back.to_failure(&model), local);
        }
    }

    #[test]
    fn a_tag_covers_the_content_and_the_kind() {
        let secret = Secret(b"s3cret".to_vec());
        let mut result = RunResult::failed("w1", &Reason::Refused("no".into()));
        result.values = Some(serde_json::json!({"t": 0.1 + 0.2}));
        let text = result.seal(Some(&secret));
        assert_eq!(RunResult::verify(&text, Some(&secret)), Ok(()));
        assert!(RunResult::read(&text).is_some());
        assert!(RunResult::verify(&text, Some(&Secret(b"other".to_vec()))).is_err());
        assert!(
            RunSpec::verify(&text, Some(&secret)).is_err(),
            "a result is no run"
        );
        let bent = text.replace("w1", "w2");
        assert!(RunResult::verify(&bent, Some(&secret)).is_err());
        let unsigned = result.seal(None);
        assert!(RunResult::verify(&unsigned, Some(&secret)).is_err());
        assert_eq!(RunResult::verify(&unsigned, None), Ok(()));
    }

    #[test]
    fn values_keep_their_types() {
        for v in [
            minijinja::Value::from(3),
            minijinja::Value::from(true),
            minijinja::Value::from("x y"),
            minijinja::Value::from(vec!["a".to_string()]),
            minijinja::Value::from(1.5),
        ] {
            assert_eq!(from_json(&to_json(&v)), v);
        }
    }
}
