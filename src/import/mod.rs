//! `tasker --import FILE` (SPEC 13): another runner's file (a justfile, a
//! go-task Taskfile.yml with its includes, a Makefile, a package.json's
//! scripts) read into a `Doc` by a parser per format, then written as a
//! tasks.toml. It stands beside the stages: it reads no tasks.toml and
//! runs nothing, and uses only `error` and `file` for paths.

mod doc;
mod just;
mod make;
mod npm;
mod taskfile;
mod text;
mod write;

use std::path::Path;

use crate::error::{Error, Result};

/// The tasks.toml made from a file, and one line per construct that did
/// not carry over (`FILE:LINE: what`).
pub(crate) struct Imported {
    pub toml: String,
    pub notes: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Just,
    Taskfile,
    Make,
    Npm,
}

/// The format a file name says, when it says one.
fn format_of(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match (name.as_str(), ext.as_deref()) {
        ("justfile" | ".justfile", _) | (_, Some("just")) => Some(Format::Just),
        ("makefile" | "gnumakefile", _) | (_, Some("mk" | "make")) => Some(Format::Make),
        ("package.json", _) => Some(Format::Npm),
        (_, Some("yml" | "yaml")) => Some(Format::Taskfile),
        _ => None,
    }
}

/// Read `path` (relative to `cwd`) and turn it into a tasks.toml.
pub(crate) fn import(path: &Path, cwd: &Path) -> Result<Imported> {
    let full = cwd.join(path);
    let shown = crate::file::display_path(&full, cwd);
    let Some(format) = format_of(&full) else {
        return Err(Error::usage(format!(
            "cannot tell what kind of file `{}` is",
            path.display()
        ))
        .with_help(
            "--import reads a justfile, a Taskfile.yml, a Makefile or a package.json, known by their names (also *.just, *.yml, *.mk)",
        ));
    };
    let text = read(&full, &path.display().to_string())?;
    let doc = match format {
        Format::Just => just::parse(&text, &shown),
        Format::Make => make::parse(&text, &shown, &full),
        Format::Npm => npm::parse(&text, &shown)?,
        Format::Taskfile => taskfile::parse(&text, &shown, &full, cwd)?,
    };
    let written = write::write(&doc, doc::KEYS);
    Ok(Imported {
        toml: written.text,
        notes: written
            .notes
            .iter()
            .map(|n| format!("{}:{}: {}", n.at.file, n.at.line, n.text))
            .collect(),
    })
}

/// The text of a file to import; `shown` names it in errors.
fn read(path: &Path, shown: &str) -> Result<String> {
    match crate::file::regular_file(path) {
        Ok(true) => {}
        Ok(false) => return Err(Error::usage(format!("no file at `{shown}`"))),
        Err(e) => return Err(e),
    }
    let bytes =
        std::fs::read(path).map_err(|e| Error::usage(format!("cannot read `{shown}`: {e}")))?;
    String::from_utf8(bytes)
        .map(|text| text.replace("\r\n", "\n"))
        .map_err(|_| Error::usage(format!("`{shown}` is not UTF-8 text")))
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// An error at a line of a file being imported, shown with that line.
fn error_at(file: &str, text: &str, line: usize, column: usize, message: String) -> Error {
    let source = std::sync::Arc::new(crate::error::SourceFile {
        display: file.to_string(),
        path: file.into(),
        text: text.to_string(),
    });
    let start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let line_text = text[start.min(text.len())..].lines().next().unwrap_or("");
    let at = start
        + line_text
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(line_text.len(), |(i, _)| i);
    let end = (at + 1).min(text.len()).max(at);
    Error::at(&crate::error::Span::new(&source, at..end), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_say_the_format() {
        assert_eq!(format_of(Path::new("justfile")), Some(Format::Just));
        assert_eq!(format_of(Path::new("a/Justfile")), Some(Format::Just));
        assert_eq!(format_of(Path::new("ci.just")), Some(Format::Just));
        assert_eq!(format_of(Path::new("Taskfile.yml")), Some(Format::Taskfile));
        assert_eq!(format_of(Path::new("Makefile")), Some(Format::Make));
        assert_eq!(format_of(Path::new("rules.mk")), Some(Format::Make));
        assert_eq!(format_of(Path::new("package.json")), Some(Format::Npm));
        assert_eq!(format_of(Path::new("build.gradle")), None);
        assert_eq!(line_of("a\nb\nc", 2), 2);
    }
}
