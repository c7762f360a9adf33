//! `[include]` (SPEC 9): each entry names a file whose tasks join the model
//! under a namespace. A missing file is an error at its entry; a file
//! included twice (or a file including one of its includers) is an error
//! naming both paths.

use std::path::{Path, PathBuf};

use super::*;

pub(crate) const INCLUDE_KEYS: &[&str] = &["path", "aliases"];

/// How deep includes may nest: far more than any project needs, and few
/// enough that loading them never meets the edge of the stack.
pub const MAX_INCLUDE_DEPTH: usize = 64;

impl Loader {
    /// Load every entry of the `[include]` table of `unit`.
    pub(super) fn includes(&mut self, w: &Walker, value: &Value, unit: usize) -> Result<()> {
        let table = w.table(value, "`include`")?;
        for (key, entry) in table.iter() {
            let namespace = key.get_ref();
            check_namespace(w, namespace, key.span())?;
            let (written, span) = include_path(w, namespace, entry)?;
            let aliases = include_aliases(w, namespace, entry)?;
            if self.depth(unit) >= MAX_INCLUDE_DEPTH {
                return Err(w
                    .error(
                        span,
                        format!("includes nest more than {MAX_INCLUDE_DEPTH} deep"),
                    )
                    .with_label("one include too many"));
            }
            let path = self.units[unit].dir.join(&written);
            let file = self.read_included(w, &path, &written, span)?;
            let dir = file
                .path
                .parent()
                .map_or_else(PathBuf::new, Path::to_path_buf);
            let here = &self.units[unit];
            let prefix = format!("{}{namespace}:", here.prefix);
            // Every way to write the namespace: the includer's prefixes,
            // each with this entry's name or one of its aliases.
            let mut others = Vec::new();
            for outer in std::iter::once(&here.prefix).chain(&here.other_prefixes) {
                for name in
                    std::iter::once(namespace.as_ref()).chain(aliases.iter().map(String::as_str))
                {
                    let other = format!("{outer}{name}:");
                    if other != prefix && !others.contains(&other) {
                        others.push(other);
                    }
                }
            }
            self.unit(file, (prefix, others), dir, Some(unit))?;
        }
        Ok(())
    }

    fn cwd(&mut self) -> &Path {
        let cwd = &self.cwd;
        self.cwd_canonical.get_or_insert_with(|| canonical(cwd))
    }

    fn depth(&self, unit: usize) -> usize {
        let mut depth = 0;
        let mut at = self.units[unit].parent;
        while let Some(u) = at {
            depth += 1;
            at = self.units[u].parent;
        }
        depth
    }

    /// The included file at `path` (as `written` in the entry at `span`),
    /// read once: a second inclusion is an error.
    fn read_included(
        &mut self,
        w: &Walker,
        path: &Path,
        written: &str,
        span: std::ops::Range<usize>,
    ) -> Result<Arc<SourceFile>> {
        let here = w.span(span);
        let found = crate::file::regular_file(path).map_err(|e| {
            Error::at(&here, format!("cannot include `{written}`: {}", e.message))
                .with_label("included here")
        })?;
        if !found {
            return Err(
                Error::at(&here, format!("included file `{written}` not found"))
                    .with_label("no such file")
                    .with_help(format!("looked for {}", path.display())),
            );
        }
        if self.seen.is_empty() {
            let root = canonical(&self.units[ROOT_UNIT].file.path);
            self.seen.push((root, None));
        }
        let canonical = canonical(path);
        if let Some((_, first)) = self.seen.iter().find(|(p, _)| *p == canonical) {
            return Err(twice(&here, written, first.as_ref(), &self.units[0].file));
        }
        self.seen.push((canonical.clone(), Some(here.clone())));
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::at(&here, format!("cannot read included file `{written}`: {e}"))
                .with_label("included here")
        })?;
        Ok(Arc::new(SourceFile {
            display: crate::file::display_canonical(&canonical, self.cwd()),
            path: canonical,
            text,
        }))
    }
}

/// The path is the entry itself (`docs = "docs/tasks.toml"`) or its
/// `path` key (`docs = { path = "docs/tasks.toml" }`).
fn include_path(
    w: &Walker,
    namespace: &str,
    entry: &Value,
) -> Result<(String, std::ops::Range<usize>)> {
    let what = format!("include `{namespace}`");
    let value = match entry.get_ref() {
        DeValue::Table(table) => {
            w.check_keys(table, INCLUDE_KEYS, &what)?;
            table.get("path").ok_or_else(|| {
                w.error(entry.span(), format!("{what} has no `path`"))
                    .with_label("needs `path`")
                    .with_help(format!(
                        "write `{namespace} = {{ path = \"dir/tasks.toml\" }}`"
                    ))
            })?
        }
        DeValue::String(_) => entry,
        _ => return Err(w.wrong_type(entry, &what, "a path or a table with `path`")),
    };
    let path = w.string(value, &what)?;
    if path.is_empty() {
        return Err(w
            .error(value.span(), format!("{what} has an empty path"))
            .with_label("empty"));
    }
    Ok((path, value.span()))
}

/// The `aliases` of an include entry: other namespaces for its tasks.
fn include_aliases(w: &Walker, namespace: &str, entry: &Value) -> Result<Vec<String>> {
    let DeValue::Table(table) = entry.get_ref() else {
        return Ok(Vec::new());
    };
    let Some(value) = table.get("aliases") else {
        return Ok(Vec::new());
    };
    let aliases = w.strings(value, format_args!("`aliases` of include `{namespace}`"))?;
    for (alias, span) in &aliases {
        check_namespace(w, alias, span.range.clone())?;
    }
    Ok(aliases.into_iter().map(|(a, _)| a).collect())
}

/// A namespace is named like a task (it becomes the start of task names).
fn check_namespace(w: &Walker, name: &str, span: std::ops::Range<usize>) -> Result<()> {
    check_task_name(w, name, span.clone()).map_err(|e| Error {
        message: format!("invalid include namespace `{name}`"),
        help: vec![
            "a namespace is named like a task: a letter or `_`, then letters, digits, `_` and `-`"
                .into(),
        ],
        ..e
    })
}

/// The error for a file included a second time: it names the path as
/// written here and the path it was first loaded by.
fn twice(
    here: &crate::error::Span,
    written: &str,
    first: Option<&crate::error::Span>,
    root: &SourceFile,
) -> Error {
    let err = match first {
        Some(first) => {
            let (line, col) = first.line_col();
            let first_text = first.file.text.get(first.range.clone()).unwrap_or("");
            Error::at(
                here,
                format!(
                    "`{written}` is included twice: here and as {first_text} at {}:{line}:{col}",
                    first.file.display
                ),
            )
        }
        None => Error::at(
            here,
            format!(
                "`{written}` is included twice: it is {}, the file tasker started from",
                root.display
            ),
        ),
    };
    err.with_label("included again here")
        .with_help("a file can be included once; call its tasks by their namespace from anywhere")
}

/// The path with links and `..` resolved, so that two spellings of one file
/// compare equal.
pub(super) fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
