//! The fingerprint of a run: one BLAKE3 hash over everything that decides
//! whether it is up to date (SPEC 7). It is computed from text and content
//! hashes alone, with paths relative to the root, so two checkouts of one
//! commit in different directories, on different machines, agree: the
//! remote cache keys artifacts by it.

use serde::{Deserialize, Serialize};

/// Bumped whenever what goes into a fingerprint changes, so that old
/// records (and cached artifacts) are never mistaken for new ones.
pub const FORMAT: &str = "tasker-fingerprint-2";

/// A BLAKE3 hash, as lowercase hex in records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub fn hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    pub fn from_hex(text: &str) -> Option<Digest> {
        blake3::Hash::from_hex(text)
            .ok()
            .map(|h| Digest(*h.as_bytes()))
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(d)?;
        Digest::from_hex(&text).ok_or_else(|| serde::de::Error::custom("not a hash"))
    }
}

/// What a run is, as text: everything but its source files.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// The task's name, and its directory relative to the root.
    pub task: String,
    pub dir: String,
    /// The `sources` and `outputs` patterns as written, and the shell.
    pub declared: Vec<String>,
    /// Every step's commands as rendered before the run (a value only a
    /// run produces stays as written), `finally` included.
    pub commands: Vec<String>,
    /// Argument names and values, matrix values and words after `--`.
    pub args: Vec<(String, String)>,
    /// The variables of the task's (and the file's) `env`, with values.
    pub env: Vec<(String, String)>,
    /// Every fingerprinted key of the task's definition (all task keys but
    /// the presentation ones) with the hash of its value as written.
    pub definition: Vec<(String, Digest)>,
}

/// The hashes of the parts of `Inputs`, kept in the record so that `-v`
/// can say which part changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parts {
    pub declared: Digest,
    pub commands: Digest,
    pub args: Digest,
    pub env: Digest,
    pub definition: Digest,
}

/// A hasher that frames every piece with its length, so that no two
/// different lists of strings feed it the same bytes. Pieces are gathered
/// in a buffer and hashed 64 KiB at a time: BLAKE3 hashes a large input
/// several chunks at once, and a run's 20,000 source files are 40,000
/// small pieces.
struct Framed {
    hasher: blake3::Hasher,
    buffer: Vec<u8>,
}

const FRAMED_BUFFER: usize = 64 * 1024;

impl Framed {
    fn new(domain: &str) -> Framed {
        let mut f = Framed {
            hasher: blake3::Hasher::new(),
            buffer: Vec::new(),
        };
        f.piece(FORMAT.as_bytes());
        f.piece(domain.as_bytes());
        f
    }

    fn piece(&mut self, bytes: &[u8]) {
        self.buffer
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= FRAMED_BUFFER {
            self.hasher.update(&self.buffer);
            self.buffer.clear();
        }
    }

    fn done(mut self) -> Digest {
        self.hasher.update(&self.buffer);
        Digest(*self.hasher.finalize().as_bytes())
    }
}

fn hash_strings<'a>(domain: &str, items: impl IntoIterator<Item = &'a str>) -> Digest {
    let mut f = Framed::new(domain);
    for item in items {
        f.piece(item.as_bytes());
    }
    f.done()
}

fn hash_pairs(domain: &str, pairs: &[(String, String)]) -> Digest {
    let mut f = Framed::new(domain);
    for (k, v) in pairs {
        f.piece(k.as_bytes());
        f.piece(v.as_bytes());
    }
    f.done()
}

impl Inputs {
    pub fn parts(&self) -> Parts {
        let mut declared = vec![self.task.as_str(), self.dir.as_str()];
        declared.extend(self.declared.iter().map(String::as_str));
        Parts {
            declared: hash_strings("declared", declared),
            commands: hash_strings("commands", self.commands.iter().map(String::as_str)),
            args: hash_pairs("args", &self.args),
            env: hash_pairs("env", &self.env),
            definition: {
                let mut f = Framed::new("definition");
                for (key, hash) in &self.definition {
                    f.piece(key.as_bytes());
                    f.piece(&hash.0);
                }
                f.done()
            },
        }
    }
}

/// The fingerprint of a run from its parts and its source files: paths
/// relative to the root (`/` separated), sorted, each with the hash of its
/// content.
pub fn fingerprint<'a>(
    parts: &Parts,
    files: impl ExactSizeIterator<Item = (&'a str, &'a Digest)>,
) -> Digest {
    let mut f = Framed::new("run");
    for part in [
        parts.declared,
        parts.commands,
        parts.args,
        parts.env,
        parts.definition,
    ] {
        f.piece(&part.0);
    }
    f.piece(&(files.len() as u64).to_le_bytes());
    for (path, hash) in files {
        f.piece(path.as_bytes());
        f.piece(&hash.0);
    }
    f.done()
}

/// The hash of a file's content.
pub fn hash_file(path: &std::path::Path) -> std::io::Result<Digest> {
    let mut hasher = blake3::Hasher::new();
    let file = std::fs::File::open(path)?;
    hasher.update_reader(file)?;
    Ok(Digest(*hasher.finalize().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(parts: &Parts, files: &[(String, Digest)]) -> Digest {
        fingerprint(parts, files.iter().map(|(p, h)| (p.as_str(), h)))
    }

    fn inputs() -> Inputs {
        Inputs {
            task: "build".into(),
            dir: "".into(),
            declared: vec!["src/**".into()],
            commands: vec!["cc -o app src/main.c".into()],
            args: vec![("mode".into(), "release".into())],
            env: vec![("CC".into(), "gcc".into())],
            definition: vec![("expect".into(), Digest([1; 32]))],
        }
    }

    /// The files of a checkout at `root`, as the fingerprint sees them.
    fn files_of(root: &std::path::Path) -> Vec<(String, Digest)> {
        let patterns = crate::glob::Patterns::new(&["src/**".to_string()]).unwrap();
        patterns
            .walk(root)
            .into_iter()
            .map(|f| {
                let hash = hash_file(&root.join(&f.path)).unwrap();
                (f.path, hash)
            })
            .collect()
    }

    fn checkout(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    #[test]
    fn two_checkouts_in_different_places_agree() {
        let tree = [("src/main.c", "int main;"), ("src/lib/a.c", "int a;")];
        let (one, two) = (checkout(&tree), checkout(&tree));
        assert_ne!(one.path(), two.path());
        let parts = inputs().parts();
        assert_eq!(
            fp(&parts, &files_of(one.path())),
            fp(&parts, &files_of(two.path()))
        );
    }

    #[test]
    fn every_input_changes_it() {
        let tree = checkout(&[("src/main.c", "int main;")]);
        let files = files_of(tree.path());
        let base = fp(&inputs().parts(), &files);
        let changed: [fn(&mut Inputs); 7] = [
            |i| i.definition[0].1 = Digest([2; 32]),
            |i| i.commands[0].push(' '),
            |i| i.args[0].1 = "debug".into(),
            |i| i.env[0].1 = "clang".into(),
            |i| i.declared.push("!src/gen".into()),
            |i| i.dir = "sub".into(),
            |i| i.task = "other".into(),
        ];
        for change in changed {
            let mut i = inputs();
            change(&mut i);
            assert_ne!(fp(&i.parts(), &files), base, "{i:?}");
        }
        std::fs::write(tree.path().join("src/main.c"), "int main2;").unwrap();
        assert_ne!(fp(&inputs().parts(), &files_of(tree.path())), base);
        std::fs::write(tree.path().join("src/new.c"), "").unwrap();
        std::fs::write(tree.path().join("src/main.c"), "int main;").unwrap();
        assert_ne!(fp(&inputs().parts(), &files_of(tree.path())), base);
    }

    #[test]
    fn framing_keeps_lists_apart() {
        let mut a = inputs();
        a.commands = vec!["ab".into(), "c".into()];
        let mut b = inputs();
        b.commands = vec!["a".into(), "bc".into()];
        assert_ne!(a.parts().commands, b.parts().commands);
    }
}
