//! What travels through the queue (SPEC 11): a run as names and values
//! (never commands), and its result back. Both are JSON.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

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
    pub duration_ms: u64,
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
    /// A located error shown whole.
    #[serde(default)]
    pub rendered: Option<String>,
    #[serde(default)]
    pub step: Option<String>,
    #[serde(default)]
    pub in_finally: bool,
    #[serde(default)]
    pub timed_out_ms: Option<u64>,
}

impl WireFailure {
    pub fn of(f: &Failure) -> WireFailure {
        let (rendered, timed_out_ms) = match &f.reason {
            Reason::Diagnostic { rendered, .. } => (Some(rendered.clone()), None),
            Reason::TimedOut(limit) => (None, Some(limit.as_millis() as u64)),
            _ => (None, None),
        };
        WireFailure {
            status: f.status(),
            message: f.reason.to_string(),
            rendered,
            step: f.step.clone(),
            in_finally: f.in_finally,
            timed_out_ms,
        }
    }

    /// A failure with only a message.
    pub fn message(status: i32, message: String) -> WireFailure {
        WireFailure {
            status,
            message,
            rendered: None,
            step: None,
            in_finally: false,
            timed_out_ms: None,
        }
    }

    pub fn to_failure(&self) -> Failure {
        let reason = match (&self.rendered, self.timed_out_ms) {
            (Some(rendered), _) => Reason::Diagnostic {
                status: self.status,
                message: self.message.clone(),
                rendered: rendered.clone(),
            },
            (None, Some(ms)) => Reason::TimedOut(Duration::from_millis(ms)),
            (None, None) => Reason::other(self.status, self.message.clone()),
        };
        Failure {
            reason,
            step: self.step.clone(),
            in_finally: self.in_finally,
        }
    }
}

impl Ended {
    pub fn of(outcome: &Outcome) -> Ended {
        match outcome {
            Outcome::Success => Ended::Success,
            Outcome::Skipped(why) => Ended::Skipped { why: why.clone() },
            Outcome::Failed(f) => Ended::Failed {
                failure: WireFailure::of(f),
            },
            Outcome::Cancelled => Ended::Cancelled,
            Outcome::NotRun(why) => Ended::NotRun { why: why.clone() },
            Outcome::Stopped => Ended::Stopped,
            Outcome::Restored => Ended::Restored,
            Outcome::UpToDate => Ended::UpToDate,
        }
    }

    pub fn to_outcome(&self) -> Outcome {
        match self {
            Ended::Success => Outcome::Success,
            Ended::Skipped { why } => Outcome::Skipped(why.clone()),
            Ended::Failed { failure } => Outcome::Failed(failure.to_failure()),
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
    pub fn failed(worker: &str, status: i32, message: String) -> RunResult {
        RunResult {
            worker: worker.to_string(),
            outcome: Ended::Failed {
                failure: WireFailure::message(status, message),
            },
            duration_ms: 0,
            values: None,
            finally: None,
        }
    }
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
        let back = Ended::of(&Outcome::Failed(local.clone()));
        let json = serde_json::to_string(&back).unwrap();
        let back: Ended = serde_json::from_str(&json).unwrap();
        let Outcome::Failed(f) = back.to_outcome() else {
            panic!("not a failure");
        };
        assert_eq!(f.status(), 3);
        assert_eq!(f.reason.to_string(), "exit status 3");
        assert_eq!(f.step.as_deref(), Some("false"));
        let timed = Failure::new(Reason::TimedOut(Duration::from_secs(2)), None);
        assert_eq!(WireFailure::of(&timed).to_failure(), timed);
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
