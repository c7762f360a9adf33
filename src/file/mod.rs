//! Finding and reading `tasks.toml`, then turning it into the model.
//! `find` knows where to look; `load` walks the TOML tree with its spans and
//! checks every key, so that nothing later meets a malformed file.

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
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("cannot read `{}`: {e}", path.display())))?;
    let file = Arc::new(SourceFile {
        display: display_path(path, cwd),
        path: path.to_path_buf(),
        text,
    });
    let root = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let root = if root.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        root
    };
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    load::load(file, root, cwd, true)
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
    load::load(file, root.to_path_buf(), root, false)
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
