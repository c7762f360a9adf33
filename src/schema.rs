//! `tasker --schema`: the JSON Schema of `tasks.toml`, for editors that
//! complete and check TOML against a schema. It states what the loader
//! accepts; the loader remains the judge (names, cross-references and
//! templates are checked there).

use serde_json::{json, Value};

fn string_or_strings() -> Value {
    json!({ "oneOf": [{ "type": "string" }, { "type": "array", "items": { "type": "string" } }] })
}

fn strings() -> Value {
    json!({ "type": "array", "items": { "type": "string" } })
}

fn duration() -> Value {
    json!({ "type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h)?)+$",
            "description": "\"500ms\", \"30s\", \"5m\", \"1h\", \"1m30s\"" })
}

fn step() -> Value {
    let options = json!({
        "ignore_failure": { "type": "boolean" },
        "dir": { "type": "string" }
    });
    let one = |key: &str, value: Value| {
        let mut props = options.clone();
        props[key] = value;
        json!({ "type": "object", "properties": props, "required": [key], "additionalProperties": false })
    };
    json!({ "oneOf": [
        { "type": "string", "description": "a shell script" },
        one("sh", json!({ "type": "string" })),
        one("cmd", strings()),
        one("pipe", strings()),
        one("task", json!({ "type": "string" })),
    ]})
}

fn steps() -> Value {
    json!({ "oneOf": [{ "type": "string" }, { "type": "array", "items": step() }] })
}

fn arg() -> Value {
    json!({
        "type": "object",
        "required": ["name"],
        "additionalProperties": false,
        "properties": {
            "name": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" },
            "help": { "type": "string" },
            "type": { "enum": ["string", "bool", "int", "float", "list", "count"] },
            "positional": { "type": "boolean" },
            "choices": { "type": "array" },
            "short": { "type": "string", "pattern": "^[A-Za-z0-9]$" },
            "default": {},
            "required": { "type": "boolean" },
            "env": { "type": "string" }
        }
    })
}

fn task() -> Value {
    let patterns = strings();
    json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "help": { "type": "string" },
            "run": steps(),
            "deps": strings(),
            "post": strings(),
            "finally": steps(),
            "args": { "type": "array", "items": arg() },
            "env": { "type": "object", "additionalProperties": { "type": ["string", "number", "boolean"] } },
            "dir": { "type": "string" },
            "shell": strings(),
            "quiet": { "type": "boolean" },
            "private": { "type": "boolean" },
            "aliases": strings(),
            "group": { "type": "string" },
            "confirm": { "type": "string" },
            "platforms": { "type": "array", "items": { "enum": ["linux", "macos", "windows", "unix"] } },
            "timeout": duration(),
            "retries": { "type": "integer", "minimum": 0 },
            "retry_delay": duration(),
            "ignore_failure": { "type": "boolean" },
            "interactive": { "type": "boolean" },
            "pty": { "type": "boolean" },
            "background": { "type": "boolean" },
            "ready": { "type": "string" },
            "ready_timeout": duration(),
            "matrix": { "type": "object", "additionalProperties": { "oneOf": [{ "type": "array" }, { "type": "string" }] } },
            "sources": strings(),
            "outputs": strings(),
            "capture": { "type": "boolean" },
            "extract": { "type": "object", "additionalProperties": { "type": "string" } },
            "expect": patterns,
            "fail_on": patterns,
            "respond": { "type": "array", "items": {
                "type": "object", "required": ["on", "send"], "additionalProperties": false,
                "properties": { "on": { "type": "string" }, "send": { "type": "string" } } } },
            "hide": { "oneOf": [{ "type": "boolean" }, { "enum": ["stdout", "stderr"] }] }
        }
    })
}

/// The schema, pretty-printed, with a final newline.
pub fn render() -> String {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "tasks.toml",
        "description": "The tasks that tasker runs",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "settings": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "shell": strings(),
                    "dotenv": string_or_strings(),
                    "default": { "type": "string" },
                    "jobs": { "type": "integer", "minimum": 1 },
                    "output": { "enum": ["interleaved", "prefixed", "grouped"] },
                    "echo": { "type": "boolean" }
                }
            },
            "env": { "type": "object", "additionalProperties": { "type": ["string", "number", "boolean"] } },
            "vars": { "type": "object", "additionalProperties": { "oneOf": [
                { "type": ["string", "number", "boolean", "array"] },
                { "type": "object", "required": ["sh"], "additionalProperties": false,
                  "properties": { "sh": { "type": "string" } } }
            ] } },
            "include": { "type": "object", "additionalProperties": { "oneOf": [
                { "type": "string" },
                { "type": "object", "required": ["path"], "properties": { "path": { "type": "string" } } }
            ] } },
            "tasks": {
                "type": "object",
                "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$" },
                "additionalProperties": task()
            }
        }
    });
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use crate::file::load::{ARG_KEYS, SETTINGS_KEYS, TASK_KEYS, TOP_KEYS};

    fn keys(v: &serde_json::Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    fn sorted(list: &[&str]) -> Vec<String> {
        let mut k: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        k.sort();
        k
    }

    #[test]
    fn the_schema_names_exactly_the_keys_the_loader_accepts() {
        let schema: serde_json::Value = serde_json::from_str(&super::render()).unwrap();
        let props = &schema["properties"];
        assert_eq!(keys(props), sorted(TOP_KEYS));
        assert_eq!(
            keys(&props["settings"]["properties"]),
            sorted(SETTINGS_KEYS)
        );
        let task = &props["tasks"]["additionalProperties"];
        assert_eq!(keys(&task["properties"]), sorted(TASK_KEYS));
        assert_eq!(
            keys(&task["properties"]["args"]["items"]["properties"]),
            sorted(ARG_KEYS)
        );
    }
}
