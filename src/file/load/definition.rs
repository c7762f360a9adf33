//! What of a task's definition its up-to-date fingerprint sees (SPEC 7):
//! every task key but the few that change nothing but presentation. The
//! list is read off the declaration of the task keys (`TASK_KEYS`), so a
//! key added later is fingerprinted unless it is declared a presentation
//! key there.
//!
//! Each key's value is hashed as a canonical form of the TOML value (not
//! its text), so reformatting a table or an array changes nothing, while
//! any change of a value does.

use toml::de::DeValue;

use super::keys::Key;
use super::Value;
use super::{ARG_KEYS, TASK_KEYS};

/// The keys of `keys` that change nothing but how a task is shown: left
/// out of the fingerprint.
pub(crate) fn presentation_keys<D>(keys: &'static [Key<D>]) -> Vec<&'static str> {
    keys.iter()
        .filter(|k| !k.fingerprinted)
        .map(|k| k.name)
        .collect()
}

/// The task keys whose values are fingerprinted, in `TASK_KEYS` order.
pub(crate) fn fingerprinted_keys() -> impl Iterator<Item = &'static str> {
    TASK_KEYS.iter().filter(|k| k.fingerprinted).map(|k| k.name)
}

/// The hash of each fingerprinted key the task's table sets, in
/// `TASK_KEYS` order. `get` looks a key up in the table.
pub(super) fn definition<'v, 'i: 'v>(
    get: impl Fn(&str) -> Option<&'v Value<'i>>,
) -> Vec<(&'static str, [u8; 32])> {
    fingerprinted_keys()
        .filter_map(|key| {
            let value = get(key)?;
            let mut hasher = blake3::Hasher::new();
            let skip = if key == "args" {
                presentation_keys(ARG_KEYS)
            } else {
                Vec::new()
            };
            canonical(value.get_ref(), &skip, 0, &mut hasher);
            Some((key, *hasher.finalize().as_bytes()))
        })
        .collect()
}

/// Feed a canonical form of `value` to `h`: a tag per kind, every piece
/// framed with its length, tables in key order. `skip` names keys left out
/// of the tables one level down (an argument's `help`).
fn canonical(value: &DeValue, skip: &[&str], depth: usize, h: &mut blake3::Hasher) {
    fn piece(h: &mut blake3::Hasher, tag: u8, bytes: &[u8]) {
        h.update(&[tag]);
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    match value {
        DeValue::String(s) => piece(h, b's', s.as_bytes()),
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            match i64::from_str_radix(&digits, i.radix()) {
                Ok(n) => piece(h, b'i', &n.to_le_bytes()),
                Err(_) => piece(h, b'I', digits.as_bytes()),
            }
        }
        DeValue::Float(f) => {
            let text = f.as_str().replace('_', "");
            match text.parse::<f64>() {
                Ok(x) => piece(h, b'f', &x.to_bits().to_le_bytes()),
                Err(_) => piece(h, b'F', text.as_bytes()),
            }
        }
        DeValue::Boolean(b) => piece(h, b'b', &[u8::from(*b)]),
        DeValue::Datetime(d) => piece(h, b'd', d.to_string().as_bytes()),
        DeValue::Array(items) => {
            piece(h, b'a', &(items.len() as u64).to_le_bytes());
            for item in items.iter() {
                canonical(item.get_ref(), skip, depth + 1, h);
            }
        }
        DeValue::Table(table) => {
            let mut entries: Vec<(&str, &Value)> = table
                .iter()
                .map(|(k, v)| (k.get_ref().as_ref(), v))
                .filter(|(k, _)| depth != 1 || !skip.contains(k))
                .collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            piece(h, b't', &(entries.len() as u64).to_le_bytes());
            for (k, v) in entries {
                piece(h, b'k', k.as_bytes());
                canonical(v.get_ref(), skip, depth + 1, h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(toml_text: &str, key: &str) -> Option<[u8; 32]> {
        let doc = toml::de::DeTable::parse(toml_text).unwrap();
        let table = doc.get_ref();
        let found = definition(|k| table.get(k));
        found.into_iter().find(|(k, _)| *k == key).map(|(_, h)| h)
    }

    #[test]
    fn presentation_keys_are_left_out_and_the_rest_are_in() {
        let presentation = presentation_keys(TASK_KEYS);
        assert_eq!(presentation, ["help", "private", "aliases", "group"]);
        for key in &presentation {
            assert!(!fingerprinted_keys().any(|k| k == *key));
        }
        assert_eq!(
            fingerprinted_keys().count() + presentation.len(),
            TASK_KEYS.len()
        );
        assert_eq!(presentation_keys(ARG_KEYS), ["help"]);
        assert!(hash_of("help = 'x'", "help").is_none());
        assert!(hash_of("expect = ['x']", "expect").is_some());
    }

    #[test]
    fn the_form_is_canonical_but_every_value_counts() {
        let a = hash_of("extract = { v = 'x', w = 'y' }", "extract");
        let b = hash_of("extract.w = 'y'\nextract.v = 'x'", "extract");
        assert_eq!(a, b);
        assert_ne!(a, hash_of("extract = { v = 'x', w = 'z' }", "extract"));
        assert_eq!(
            hash_of("timeout = 1_0", "timeout"),
            hash_of("timeout = 10", "timeout")
        );
        assert_ne!(
            hash_of("timeout = 10", "timeout"),
            hash_of("timeout = '10'", "timeout")
        );
        assert_ne!(
            hash_of("run = ['a', 'b']", "run"),
            hash_of("run = ['ab']", "run")
        );
        // An argument's help is presentation; its default is not.
        let arg = |help: &str, default: &str| {
            hash_of(
                &format!("args = [{{ name = 'n', help = '{help}', default = '{default}' }}]"),
                "args",
            )
        };
        assert_eq!(arg("one", "x"), arg("two", "x"));
        assert_ne!(arg("one", "x"), arg("one", "y"));
    }
}
