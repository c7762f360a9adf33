//! `.env` files: `KEY=VALUE` lines, `export` allowed, `#` comments, single
//! or double quoted values (double quotes understand `\n`, `\t`, `\"`,
//! `\\`). A malformed line is an error naming the file and line.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result, SourceFile, Span};

/// Read `path` into `env` (later keys win). A missing file is no error.
pub fn read_into(path: &Path, shown: &str, env: &mut BTreeMap<String, String>) -> Result<bool> {
    // Only a regular file is read: a FIFO would block for ever, a device
    // such as /dev/zero would fill memory without end.
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() {
            return Err(Error::usage(format!(
                "dotenv file `{shown}` is {}, not a regular file",
                crate::error::kind_of(&meta.file_type())
            ))
            .with_help("settings.dotenv names files of KEY=VALUE lines"));
        }
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(Error::usage(format!(
                "cannot read dotenv file `{shown}`: {e}"
            )))
        }
    };
    let pairs = match parse(&text) {
        Ok(pairs) => pairs,
        Err((line, why)) => {
            // Shown like every file error: path:line:col and the line.
            let start: usize = text
                .split_inclusive('\n')
                .take(line - 1)
                .map(str::len)
                .sum();
            let end = start + text[start..].find('\n').unwrap_or(text.len() - start);
            let file = std::sync::Arc::new(SourceFile {
                display: shown.to_string(),
                path: path.to_path_buf(),
                text,
            });
            return Err(Error::at(
                &Span::new(&file, start..end),
                format!("malformed dotenv file `{shown}` at line {line}: {why}"),
            )
            .with_label("malformed line")
            .with_help("lines look like KEY=VALUE, `export KEY=VALUE` or `# comment`"));
        }
    };
    for (key, value) in pairs {
        env.insert(key, value);
    }
    Ok(true)
}

/// The pairs of a dotenv text, or the 1-based line and reason of the first
/// malformed line.
pub fn parse(text: &str) -> std::result::Result<Vec<(String, String)>, (usize, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line
            .strip_prefix("export ")
            .map(str::trim_start)
            .unwrap_or(line);
        let Some((key, rest)) = line.split_once('=') else {
            return Err((n + 1, format!("`{line}` has no `=`")));
        };
        let key = key.trim();
        let valid = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !valid {
            return Err((n + 1, format!("`{key}` is not a variable name")));
        }
        let rest = rest.trim_start();
        let value = if let Some(body) = rest.strip_prefix('"') {
            // Double quotes may span lines.
            let mut raw = body.to_string();
            loop {
                if let Some(end) = closing_quote(&raw) {
                    raw.truncate(end);
                    break;
                }
                match lines.next() {
                    Some((_, more)) => {
                        raw.push('\n');
                        raw.push_str(more);
                    }
                    None => return Err((n + 1, "unterminated double quote".into())),
                }
            }
            unescape(&raw)
        } else if let Some(body) = rest.strip_prefix('\'') {
            match body.find('\'') {
                Some(end) => body[..end].to_string(),
                None => return Err((n + 1, "unterminated single quote".into())),
            }
        } else {
            let value = match rest.find(" #") {
                Some(at) => &rest[..at],
                None => rest,
            };
            value.trim_end().to_string()
        };
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_the_usual_forms() {
        let pairs = parse(
            "# c\nA=1\nexport B = two words # note\nC=\"x\\ny\"\nD='$raw'\n\nE=\"multi\nline\"\n",
        )
        .unwrap();
        assert_eq!(
            pairs,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "x\ny".into()),
                ("D".into(), "$raw".into()),
                ("E".into(), "multi\nline".into()),
            ]
        );
    }

    #[test]
    fn reports_the_bad_line() {
        assert_eq!(parse("A=1\nnonsense\n").unwrap_err().0, 2);
        assert_eq!(parse("A=\"open\n").unwrap_err().0, 1);
        assert_eq!(parse("1A=x").unwrap_err().0, 1);
    }
}
