//! Finding and reading `tasks.toml`, then turning it into the model.
//! `find` knows where to look; `load` walks the TOML tree with its spans and
//! checks every key, so that nothing later meets a malformed file.

mod index;
pub mod listing;
pub(crate) mod load;
mod toml_walk;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result, SourceFile};
use crate::model::Model;

pub const FILE_NAME: &str = "tasks.toml";

/// The file to use: `explicit` when given (relative to `cwd`), else the
/// first `tasks.toml` in `cwd` or one of its parents.
pub fn find(cwd: &Path, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        let path = cwd.join(path);
        return match regular_file(&path) {
            Ok(true) => Ok(path),
            Ok(false) => Err(Error::usage(format!("no file at `{}`", path.display()))
                .with_help("check the path given to -f/--file")),
            Err(e) => Err(e),
        };
    }
    for dir in cwd.ancestors() {
        let candidate = dir.join(FILE_NAME);
        // Something named tasks.toml that is not a file stops the search:
        // silently taking a parent's file instead would run the wrong tasks.
        if regular_file(&candidate)? {
            return Ok(candidate);
        }
    }
    Err(Error::usage(format!(
        "no {FILE_NAME} found in {} or any parent directory",
        cwd.display()
    ))
    .with_help("run `tasker --init` to write a starter file here, or pass one with -f"))
}

/// Whether `path` is a regular file (through symlinks): false when nothing
/// is there, an error naming what is there when it is something else (a
/// directory, a FIFO that would block the read, a device without end).
pub fn regular_file(path: &Path) -> Result<bool> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(true),
        Ok(meta) => Err(Error::usage(format!(
            "`{}` is {}, not a regular file",
            path.display(),
            crate::error::kind_of(&meta.file_type())
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::usage(format!(
            "cannot read `{}`: {e}",
            path.display()
        ))),
    }
}

/// Read and validate the file at `path`; `cwd` only shapes how the path is
/// shown.
pub fn load(path: &Path, cwd: &Path) -> Result<Model> {
    let file = read(path, cwd)?;
    let root = root_of(path);
    load::load(Arc::new(file), root, cwd, true, None)
}

/// Load what running `words` (the command line's task words) needs: a
/// part of a large file when its load index knows them (`true`), else the
/// whole file, indexed for the next run (`None`). A part has every task
/// the words reach and every table runs need, and no others; its size in
/// bytes comes back.
pub fn load_to_run(path: &Path, cwd: &Path, words: &[String]) -> Result<(Model, Option<usize>)> {
    let file = read(path, cwd)?;
    let root = root_of(path);
    if file.text.len() < index::MIN_BYTES {
        return Ok((load::load(Arc::new(file), root, cwd, true, None)?, None));
    }
    let hash = index::hash(&file.text);
    let file = load::without_cr(Arc::new(file));
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let part = index::read(&root).and_then(|ix| index::part(&ix, &file.text, &hash, &words));
    if let Some(part) = part {
        let size = part.text.len();
        let whole = Arc::clone(&file);
        // A part that does not load (it never should) costs the whole load.
        if let Ok(model) = load::load(whole, root.clone(), cwd, true, Some(Arc::new(part))) {
            return Ok((model, Some(size)));
        }
    }
    let model = load::load(Arc::clone(&file), root.clone(), cwd, true, None)?;
    if let Some(index) = index::build(&model, &file.text, &hash) {
        index::write(&root, &index);
    }
    Ok((model, None))
}

/// What `tasker -l` prints for the file at `path`: from the listing cache
/// when the file's bytes (and the rest of the key) are the ones it was
/// made from, else rendered by `render` from a whole load, and kept.
pub fn listing(
    path: &Path,
    cwd: &Path,
    all: bool,
    color: bool,
    render: &dyn Fn(&Model) -> String,
) -> Result<String> {
    // Read once: the key needs the bytes, and a miss loads the same text.
    let file = read(path, cwd)?;
    let root = root_of(path);
    if file.text.len() < index::MIN_BYTES {
        let model = std::mem::ManuallyDrop::new(load::load(Arc::new(file), root, cwd, true, None)?);
        return Ok(render(&model));
    }
    let key = listing::Key::new(&file.text, &file.display, all, color);
    if let Some(cached) = listing::cached(&root, &key) {
        return Ok(cached);
    }
    let model =
        std::mem::ManuallyDrop::new(load::load(Arc::new(file), root.clone(), cwd, true, None)?);
    let out = render(&model);
    listing::store(&root, &key, &model, &out);
    Ok(out)
}

fn read(path: &Path, cwd: &Path) -> Result<SourceFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("cannot read `{}`: {e}", path.display())))?;
    Ok(SourceFile {
        display: display_path(path, cwd),
        path: path.to_path_buf(),
        text,
    })
}

/// The directory that holds the file, canonical where it can be.
fn root_of(path: &Path) -> PathBuf {
    let root = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let root = if root.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        root
    };
    std::fs::canonicalize(&root).unwrap_or(root)
}

/// Validate `text` as if it were a file named `name` in `root`: for
/// tests, and for tools that hold a file's text already (each call frees
/// what it parsed).
pub fn load_str(text: &str, name: &str, root: &Path) -> Result<Model> {
    let file = Arc::new(SourceFile {
        display: name.to_string(),
        path: root.join(name),
        text: text.to_string(),
    });
    load::load(file, root.to_path_buf(), root, false, None)
}

/// `./tasks.toml`, `../tasks.toml` or the absolute path, whichever reads
/// best from where the user stands.
pub fn display_path(path: &Path, cwd: &Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let cwd = std::fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
    display_canonical(&path, &cwd)
}

/// `display_path` for paths already canonical.
pub(crate) fn display_canonical(path: &Path, cwd: &Path) -> String {
    if let Ok(rel) = path.strip_prefix(cwd) {
        return format!("./{}", rel.display());
    }
    let mut up = String::new();
    for dir in cwd.ancestors().skip(1) {
        up.push_str("../");
        if let Ok(rel) = path.strip_prefix(dir) {
            if up.len() <= 12 {
                return format!("{up}{}", rel.display());
            }
            break;
        }
    }
    path.display().to_string()
}
