//! package.json's `scripts`: each script a task, `preX` and `postX` run
//! before and after `X` as `npm run X` runs them, and `npm run X` (or
//! `npm test`, `yarn X`, `pnpm X`) inside a script a call of task `X`.
//! Scripts find the programs of `node_modules/.bin` as under npm.

use std::collections::{HashMap, HashSet};

use serde::de::{Deserializer, MapAccess, Visitor};

use super::doc::*;
use super::text::{self, Piece};
use crate::error::Result;

/// The scripts in file order (a JSON object's order is the author's).
struct Scripts(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Scripts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Scripts;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of scripts")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Scripts, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Scripts(out))
            }
        }
        d.deserialize_map(Ordered)
    }
}

#[derive(serde::Deserialize)]
struct Package {
    scripts: Option<Scripts>,
}

pub(crate) fn parse(source: &str, file: &str) -> Result<Doc> {
    let package: Package = serde_json::from_str(source).map_err(|e| {
        super::error_at(
            file,
            source,
            e.line(),
            e.column(),
            format!("`{file}` is not a package.json: {e}"),
        )
    })?;
    let scripts = package.scripts.map(|s| s.0).unwrap_or_default();
    let mut doc = Doc {
        source: file.to_string(),
        ..Doc::default()
    };
    let place = |line| Place {
        file: file.to_string(),
        line,
    };
    if scripts.is_empty() {
        doc.notes.push(Note::new(
            &place(1),
            "no `scripts` in this package.json: no tasks",
        ));
        return Ok(doc);
    }
    doc.env.push(Entry {
        name: "PATH".into(),
        value: Value::Text("{{ root }}/node_modules/.bin:{{ env.PATH }}".into()),
        comments: vec![" npm runs scripts with node_modules/.bin first in PATH".into()],
        notes: Vec::new(),
    });
    let names: HashSet<&str> = scripts.iter().map(|(n, _)| n.as_str()).collect();
    let mut taken = HashSet::new();
    let mut renamed: HashMap<String, String> = HashMap::new();
    for (name, _) in &scripts {
        renamed.insert(
            name.clone(),
            text::unique(text::task_name(name), &mut taken),
        );
    }
    let mut reads_extra: HashSet<String> = HashSet::new();
    let mut search_from = source.find("\"scripts\"").unwrap_or(0);
    for (name, body) in &scripts {
        let key = serde_json::to_string(name).unwrap_or_default();
        let line = match source[search_from..].find(&key) {
            Some(at) => {
                search_from += at + key.len();
                super::line_of(source, search_from)
            }
            None => 1,
        };
        let at = place(line);
        let task_name = renamed[name].clone();
        let mut task = Task::new(task_name.clone(), &at);
        if task_name != *name {
            task.notes.push(Note::new(
                &at,
                format!("script `{name}` is task `{task_name}` (a task name holds no `:`)"),
            ));
        }
        let Some(body) = body.as_str() else {
            task.notes
                .push(Note::new(&at, "a script that is not a string"));
            doc.tasks.push(task);
            continue;
        };
        // npm runs preX before X and postX after it.
        for (prefix, list) in [("pre", &mut task.deps), ("post", &mut task.post)] {
            let other = format!("{prefix}{name}");
            if names.contains(other.as_str()) {
                list.push(renamed[&other].clone());
            }
        }
        task.run = steps(body, &renamed, &at, &mut reads_extra, &mut task.notes);
        doc.tasks.push(task);
    }
    for task in &mut doc.tasks {
        if reads_extra.contains(&task.name) {
            if let [Step {
                kind: StepKind::Sh(command),
                ..
            }] = task.run.as_mut_slice()
            {
                command.push_str(" {{ extra }}");
            }
        }
    }
    Ok(doc)
}

/// The steps of one script: split at `&&` into calls of other scripts
/// where it calls them, else the script as written.
fn steps(
    body: &str,
    renamed: &HashMap<String, String>,
    at: &Place,
    reads_extra: &mut HashSet<String>,
    notes: &mut Vec<Note>,
) -> Vec<Step> {
    if body.contains("$npm_") || body.contains("${npm_") {
        notes.push(Note::new(
            at,
            "reads a `$npm_...` variable, which npm sets and tasker does not",
        ));
    }
    let parts = split_and(body);
    let calls: Vec<Option<(String, bool)>> =
        parts.iter().map(|p| script_call(p, renamed)).collect();
    if calls.iter().all(Option::is_none) {
        if mentions_runner(body) {
            notes.push(Note::new(
                at,
                "calls another script in a way an import does not follow; kept as a shell command",
            ));
        }
        return vec![Step::sh(shell(body))];
    }
    parts
        .iter()
        .zip(calls)
        .map(|(part, call)| match call {
            Some((call, extra)) => {
                if extra {
                    let callee = call.split_whitespace().next().unwrap_or("").to_string();
                    reads_extra.insert(callee);
                }
                Step::task(call)
            }
            None => Step::sh(shell(part)),
        })
        .collect()
}

fn shell(text: &str) -> String {
    text::command(&[Piece::Text(text.trim().to_string())], true)
}

fn mentions_runner(body: &str) -> bool {
    body.split_whitespace().any(|w| {
        matches!(
            w,
            "npm" | "yarn" | "pnpm" | "run-s" | "run-p" | "npm-run-all"
        )
    })
}

/// `body` split at each `&&` outside quotes.
fn split_and(body: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '&') if chars.peek() == Some(&'&') => {
                chars.next();
                parts.push(std::mem::take(&mut current).trim().to_string());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current.trim().to_string());
    parts
}

/// The task call that `part` is when it runs another script (`npm run
/// X`, `npm test`, `yarn X`, ...), and whether it passes words after `--`.
fn script_call(part: &str, renamed: &HashMap<String, String>) -> Option<(String, bool)> {
    let words = shell_words::split(part).ok()?;
    let mut words = words
        .iter()
        .map(String::as_str)
        .filter(|w| !matches!(*w, "-s" | "--silent"));
    let script = match (words.next()?, words.next()?) {
        ("npm", "run" | "run-script") | ("yarn" | "pnpm", "run") => words.next()?,
        ("npm", "test" | "t") => "test",
        ("npm", "start" | "stop" | "restart") => part.split_whitespace().nth(1)?,
        ("yarn" | "pnpm", script) => script,
        _ => return None,
    };
    let task = renamed.get(script)?;
    let rest: Vec<&str> = words.collect();
    let (extra, rest) = match rest.split_first() {
        Some((&"--", rest)) => (true, rest),
        _ if rest.is_empty() => (false, &rest[..]),
        _ => return None,
    };
    let mut call = task.clone();
    if extra {
        call.push_str(" --");
        for word in rest {
            call.push(' ');
            call.push_str(&text::literal(&text::call_word(word)));
        }
    }
    Some((call, extra))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_of_other_scripts_become_task_steps() {
        let renamed: HashMap<String, String> = [("build", "build"), ("lint:fix", "lint-fix")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(
            script_call("npm run build", &renamed),
            Some(("build".into(), false))
        );
        assert_eq!(
            script_call("yarn lint:fix -- --quiet", &renamed),
            Some(("lint-fix -- --quiet".into(), true))
        );
        assert_eq!(script_call("npm run nothing", &renamed), None);
        assert_eq!(script_call("tsc -p .", &renamed), None);
        assert_eq!(split_and("a && 'b && c' && d"), ["a", "'b && c'", "d"]);
    }
}
