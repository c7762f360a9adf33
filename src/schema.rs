//! `tasker --schema`: the JSON Schema of `tasks.toml`, for editors that
//! complete and check TOML against a schema. It states what the loader
//! accepts; the loader remains the judge (names, cross-references and
//! templates are checked there). Every key's description is the
//! reference's own words (docs/reference.md's key tables).

use serde_json::{json, Value};

use crate::file::load::keys::{self, shape::*, Key};
use crate::file::load::{ARG_KEYS, TASK_KEYS};

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
                    "output": { "enum": crate::model::OutputMode::names() },
                    "echo": { "type": "boolean" },
                    "remote_cache": {
                        "type": "object",
                        "additionalProperties": false,
                        "properties": {
                            "url": { "type": "string", "pattern": "^https?://" },
                            "team": { "type": "string" }
                        }
                    },
                    "queue": { "type": "string", "pattern": "^rediss?://" },
                    "queue_timeout": duration()
                }
            },
            "env": { "type": "object", "additionalProperties": { "type": ["string", "number", "boolean"] } },
            "vars": { "type": "object", "additionalProperties": { "oneOf": [
                { "type": ["string", "number", "boolean", "array"] },
                { "type": "object", "required": ["sh"], "additionalProperties": false,
                  "properties": { "sh": { "type": "string",
                    "description": "A shell command; the var's value is its trimmed stdout" } } }
            ] } },
            "include": { "type": "object", "additionalProperties": { "oneOf": [
                { "type": "string" },
                { "type": "object", "required": ["path"], "additionalProperties": false,
                  "properties": { "path": { "type": "string",
                    "description": "The included file, relative to the including file" },
                    "aliases": { "type": "array", "items": { "type": "string" },
                    "description": "Other namespaces for its tasks: `d` makes `docs:build` also `d:build`" } } }
            ] } },
            "tasks": {
                "type": "object",
                "propertyNames": { "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$" },
                "additionalProperties": keys::object(TASK_KEYS, &[])
            }
        }
    });
    let mut schema = schema;
    describe(&mut schema);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Give every key the meaning, type and default its row in the
/// reference's tables says.
fn describe(schema: &mut Value) {
    let top = &mut schema["properties"];
    add_descriptions(top, "Top-level tables");
    add_descriptions(&mut top["settings"]["properties"], "Settings keys");
    add_descriptions(
        &mut top["settings"]["properties"]["remote_cache"]["properties"],
        "Remote cache keys",
    );
    let task = &mut top["tasks"]["additionalProperties"]["properties"];
    describe_keys(task, TASK_KEYS);
    describe_keys(&mut task["args"]["items"]["properties"], ARG_KEYS);
    for key in ["run", "finally"] {
        // A list of steps; each table form names its keys.
        if let Some(forms) = task[key]["oneOf"][1]["items"]["oneOf"].as_array_mut() {
            for form in forms {
                if let Some(properties) = form.get_mut("properties") {
                    add_descriptions(properties, "Step keys");
                }
            }
        }
    }
}

/// The keys of a table the reference describes in prose.
fn add_descriptions(properties: &mut Value, heading: &str) {
    for row in crate::reference::table(heading) {
        if let [key, ty, default, example, meaning] = &row[..] {
            let key = crate::reference::plain(key);
            add_description(
                properties,
                &key,
                [ty, default, example, meaning].map(String::as_str),
            );
        }
    }
}

/// The keys of a table declared in the loader (`file::load::keys`).
fn describe_keys<D>(properties: &mut Value, keys: &'static [Key<D>]) {
    for key in keys {
        add_description(properties, key.name, key.doc);
    }
}

/// The description of `key` from its reference row: type, default,
/// example, meaning.
fn add_description(properties: &mut Value, key: &str, row: [&str; 4]) {
    let Some(Value::Object(entry)) = properties.get_mut(key) else {
        return;
    };
    let plain = crate::reference::plain;
    let [ty, default, example, meaning] = row;
    let mut text = format!(
        "{} ({}; default: {}). Example: {}",
        crate::reference::capitalised(&plain(meaning)),
        plain(ty),
        plain(default),
        plain(example)
    );
    // A shape's own note (a duration's format) stays.
    if let Some(Value::String(note)) = entry.get("description") {
        text = format!("{text}. Written as {note}");
    }
    entry.insert("description".into(), Value::String(text));
}

#[cfg(test)]
mod tests {
    use crate::file::load::keys::names;
    use crate::file::load::{ARG_KEYS, REMOTE_CACHE_KEYS, SETTINGS_KEYS, TASK_KEYS, TOP_KEYS};

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

    /// Every `properties` object in the schema, with its path.
    fn property_maps<'v>(
        v: &'v serde_json::Value,
        path: String,
        out: &mut Vec<(String, &'v serde_json::Value)>,
    ) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, child) in map {
                    if k == "properties" {
                        out.push((path.clone(), child));
                    }
                    property_maps(child, format!("{path}/{k}"), out);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    property_maps(child, format!("{path}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_key_has_the_references_description() {
        let schema: serde_json::Value = serde_json::from_str(&super::render()).unwrap();
        let mut maps = Vec::new();
        property_maps(&schema, String::new(), &mut maps);
        let mut missing = Vec::new();
        for (path, props) in maps {
            for (key, value) in props.as_object().unwrap() {
                // The keys inside `respond`, `preconditions` and a task's
                // `vars` are described by those keys themselves.
                if ["/respond/", "/preconditions/", "/vars/"]
                    .iter()
                    .any(|k| path.contains(k))
                {
                    continue;
                }
                if !value["description"].is_string() {
                    missing.push(format!("{path}/{key}"));
                }
            }
        }
        assert_eq!(missing, Vec::<String>::new());
        let timeout =
            &schema["properties"]["tasks"]["additionalProperties"]["properties"]["timeout"];
        assert!(timeout["description"]
            .as_str()
            .unwrap()
            .starts_with("Past it the run's processes are stopped"));
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
        assert_eq!(
            keys(&props["settings"]["properties"]["remote_cache"]["properties"]),
            sorted(REMOTE_CACHE_KEYS)
        );
        let task = &props["tasks"]["additionalProperties"];
        let task_keys: Vec<&str> = names(TASK_KEYS).collect();
        assert_eq!(keys(&task["properties"]), sorted(&task_keys));
        let arg_keys: Vec<&str> = names(ARG_KEYS).collect();
        assert_eq!(
            keys(&task["properties"]["args"]["items"]["properties"]),
            sorted(&arg_keys)
        );
    }
}
