//! The listing cache: `tasker -l` of a large file prints what it printed
//! last time, without parsing the file, when nothing the listing shows can
//! have changed.
//!
//! After a whole load of a file of at least `index::MIN_BYTES` without
//! includes, `-l` writes `.tasker/list-cache`: a key, then the exact text
//! it printed. The key is a hash of the file's bytes, tasker's version,
//! the path as shown, `--all` and whether colours are on: the listing
//! depends on nothing else. A file with includes is never cached (a change
//! in an included file would not change the key), and a file that does not
//! load is never cached either, so its errors always show.

use std::path::Path;

use super::index;
use crate::model::Model;

const NAME: &str = "list-cache";
const FORMAT: &str = "tasker-list-cache 1";

/// What decides a listing, hashed.
pub struct Key(String);

impl Key {
    pub fn new(text: &str, display: &str, all: bool, color: bool) -> Key {
        let mut h = blake3::Hasher::new();
        for piece in [
            FORMAT.as_bytes(),
            env!("CARGO_PKG_VERSION").as_bytes(),
            display.as_bytes(),
            &[u8::from(all), u8::from(color)],
            text.as_bytes(),
        ] {
            h.update(&(piece.len() as u64).to_le_bytes());
            h.update(piece);
        }
        Key(h.finalize().to_hex().to_string())
    }
}

/// The listing cached for `key` beside the file in `root`.
pub fn cached(root: &Path, key: &Key) -> Option<String> {
    let text = index::read_state(root, NAME)?;
    let (first, listing) = text.split_once('\n')?;
    (first == key.0).then(|| listing.to_string())
}

/// Keep `listing` for `key`, when the model is one file (no includes). A
/// failure only costs the next `-l` a whole load.
pub fn store(root: &Path, key: &Key, model: &Model, listing: &str) {
    if model.units.len() != 1 {
        return;
    }
    if let Ok(dir) = crate::state::dir(root, "") {
        let text = format!("{}\n{listing}", key.0);
        let _ = crate::state::write_atomically(&dir.join(NAME), text.as_bytes());
    }
}
