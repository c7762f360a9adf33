//! The one declaration of a table's keys. Each key of a task table
//! (`task::TASK_KEYS`) and of an argument table (`args::ARG_KEYS`) is one
//! `Key`: its name, its row of the reference, its JSON Schema, whether the
//! up-to-date fingerprint sees it, and the function that reads it into the
//! model with located errors. The loader, `--schema`, the reference's key
//! tables and the fingerprint's key list are all read off these tables.

use serde_json::{json, Value as Json};

use super::*;

/// Reads one key's value into the thing being built (`D`: a `Task`, an
/// `Arg`), with its own located errors. Keys are read in declaration
/// order, so a key may rely on the keys declared before it.
pub(crate) type Read<D> = fn(&Walker, &Value, KeyOf, &mut D) -> Result<()>;

pub(crate) struct Key<D: 'static> {
    pub(crate) name: &'static str,
    /// The key's row of the reference, in Markdown: type, default,
    /// example, meaning.
    pub(crate) doc: [&'static str; 4],
    /// The JSON Schema of its value (`--schema` adds the description).
    pub(crate) schema: fn() -> Json,
    /// False for a key that changes nothing but how a task is shown: the
    /// up-to-date fingerprint leaves it out (SPEC 7).
    pub(crate) fingerprinted: bool,
    pub(crate) read: Read<D>,
}

/// A fingerprinted key.
pub(super) const fn key<D>(
    name: &'static str,
    doc: [&'static str; 4],
    schema: fn() -> Json,
    read: Read<D>,
) -> Key<D> {
    Key {
        name,
        doc,
        schema,
        fingerprinted: true,
        read,
    }
}

/// A key that changes nothing but how a task is shown.
pub(super) const fn presentation<D>(
    name: &'static str,
    doc: [&'static str; 4],
    schema: fn() -> Json,
    read: Read<D>,
) -> Key<D> {
    Key {
        fingerprinted: false,
        ..key(name, doc, schema, read)
    }
}

pub(crate) fn names<D>(keys: &'static [Key<D>]) -> impl Iterator<Item = &'static str> + Clone {
    keys.iter().map(|k| k.name)
}

/// "`KEY` of task `NAME`" (or of argument), formatted only when an error
/// needs it.
#[derive(Clone, Copy)]
pub(crate) struct KeyOf<'a> {
    pub(super) key: &'static str,
    pub(super) owner: &'static str,
    pub(super) name: &'a str,
}

impl std::fmt::Display for KeyOf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` of {} `{}`", self.key, self.owner, self.name)
    }
}

/// Read every key that `entries` (a table's keys and values) sets into
/// `into`, in declaration order. `owner` and `name` name the table in
/// messages ("`timeout` of task `build`").
pub(super) fn read_keys<D>(
    w: &Walker,
    keys: &'static [Key<D>],
    entries: &[(&str, &Value)],
    (owner, name): (&'static str, &str),
    into: &mut D,
) -> Result<()> {
    for key in keys {
        if let Some((_, value)) = entries.iter().find(|(k, _)| *k == key.name) {
            let what = KeyOf {
                key: key.name,
                owner,
                name,
            };
            (key.read)(w, value, what, into)?;
        }
    }
    Ok(())
}

/// The reference's table of `keys`: its header and a row per key, each
/// line ending in a newline.
#[cfg(test)]
pub(crate) fn reference_table<D>(keys: &'static [Key<D>]) -> String {
    let mut out =
        String::from("| key | type | default | example | meaning |\n|---|---|---|---|---|\n");
    for key in keys {
        let [ty, default, example, meaning] = key.doc;
        out.push_str(&format!(
            "| `{}` | {ty} | {default} | {example} | {meaning} |\n",
            key.name
        ));
    }
    out
}

/// `{ "type": "object", ... }` whose properties are `keys`.
pub(crate) fn object<D>(keys: &'static [Key<D>], required: &[&str]) -> Json {
    let properties: serde_json::Map<String, Json> = keys
        .iter()
        .map(|k| (k.name.to_string(), (k.schema)()))
        .collect();
    let mut object = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    });
    if !required.is_empty() {
        object["required"] = json!(required);
    }
    object
}

/// Shapes of values that several keys share, in JSON Schema.
pub(crate) mod shape {
    use serde_json::{json, Value};

    pub(crate) fn string() -> Value {
        json!({ "type": "string" })
    }

    pub(crate) fn boolean() -> Value {
        json!({ "type": "boolean" })
    }

    pub(crate) fn strings() -> Value {
        json!({ "type": "array", "items": { "type": "string" } })
    }

    pub(crate) fn string_or_strings() -> Value {
        json!({ "oneOf": [{ "type": "string" }, strings()] })
    }

    pub(crate) fn duration() -> Value {
        json!({ "type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h)?)+$",
                "description": "\"500ms\", \"30s\", \"5m\", \"1h\", \"1m30s\"" })
    }

    pub(crate) fn env() -> Value {
        json!({ "type": "object", "additionalProperties": { "type": ["string", "number", "boolean"] } })
    }

    pub(crate) fn vars() -> Value {
        json!({ "type": "object", "additionalProperties": { "oneOf": [
            { "type": ["string", "number", "boolean", "array"] },
            { "type": "object", "required": ["sh"], "additionalProperties": false,
              "properties": { "sh": { "type": "string" } } }
        ] } })
    }

    fn step() -> Value {
        let options = json!({
            "ignore_failure": { "type": "boolean" },
            "dir": { "type": "string" },
            "quiet": { "type": "boolean" }
        });
        let one = |key: &str, value: Value| {
            let mut props = options.clone();
            props[key] = value;
            json!({ "type": "object", "properties": props, "required": [key], "additionalProperties": false })
        };
        json!({ "oneOf": [
            { "type": "string", "description": "a shell script" },
            one("sh", string()),
            one("cmd", strings()),
            one("pipe", strings()),
            one("task", string()),
        ]})
    }

    pub(crate) fn steps() -> Value {
        json!({ "oneOf": [string(), { "type": "array", "items": step() }] })
    }
}
