//! The load index: running one task of a large file parses only the tables
//! that task reaches.
//!
//! Parsing the whole TOML document is most of what running one task of a
//! 5,000-task file costs. After a whole load succeeds for a run, tasker
//! writes `.tasker/load-index`: the file's hash, tasker's version, the byte
//! ranges of the tables every run needs (`[settings]`, `[vars]`, `[env]`),
//! and for each task name and alias the ranges of the task tables it
//! reaches through its literal calls. The next run of the same content
//! reads the index, joins the ranges into a small document and loads that;
//! spans are mapped back, so every message still names the file's own
//! lines and columns.
//!
//! An index is only written for content that loaded without an error, so
//! errors elsewhere in the file are never hidden: `-l`, `--check` and any
//! other action load the whole file. Files with includes, top-level keys
//! outside tables, or a task that calls tasks through a template are not
//! indexed (those tasks need every task), and a lookup that finds no line
//! for a word falls back to the whole load too.

use std::ops::Range;
use std::path::Path;

use crate::model::Model;

/// Below this size a whole load costs less than reading an index.
pub const MIN_BYTES: usize = 64 * 1024;
const NAME: &str = "load-index";
const FORMAT: &str = "tasker-load-index 1";

/// Which part of the file a table belongs to.
#[derive(Debug, PartialEq, Eq, Clone)]
enum Owner {
    /// `[settings]`, `[vars]`, `[env]` and any other non-task table.
    Common,
    /// The tables under `tasks.NAME`.
    Task(String),
}

/// The file cut at its table headers: each part runs from a header line to
/// the next one. `None` when some content cannot be given to one part (keys
/// before the first header, keys in `[tasks]` itself).
fn segments(text: &str) -> Option<Vec<(Range<usize>, Owner)>> {
    let headers = Scanner::new(text).headers()?;
    if headers.first().is_none_or(|h| h.start > 0) {
        let end = headers.first().map_or(text.len(), |h| h.start);
        if has_content(&text[..end]) {
            return None;
        }
    }
    let mut out = Vec::with_capacity(headers.len());
    for (i, header) in headers.iter().enumerate() {
        let end = headers.get(i + 1).map_or(text.len(), |h| h.start);
        let owner = match header.path.as_slice() {
            [first, name, ..] if first == "tasks" => Owner::Task(name.clone()),
            [first] if first == "tasks" => {
                if has_content(&text[header.body..end]) {
                    return None;
                }
                Owner::Common
            }
            _ => Owner::Common,
        };
        out.push((header.start..end, owner));
    }
    Some(out)
}

/// Anything but blanks and comments.
fn has_content(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start();
        !line.is_empty() && !line.starts_with('#')
    })
}

struct Header {
    /// Where the header line starts.
    start: usize,
    /// Where the line after the header starts.
    body: usize,
    path: Vec<String>,
}

/// Finds table headers in a TOML document known to be valid: a `[` that
/// starts a line outside strings, comments and values.
struct Scanner<'t> {
    text: &'t [u8],
    at: usize,
}

impl<'t> Scanner<'t> {
    fn new(text: &'t str) -> Scanner<'t> {
        Scanner {
            text: text.as_bytes(),
            at: 0,
        }
    }

    fn peek(&self, n: usize) -> Option<u8> {
        self.text.get(self.at + n).copied()
    }

    fn headers(mut self) -> Option<Vec<Header>> {
        let mut headers = Vec::new();
        let mut depth = 0usize;
        let mut line_start = true;
        while let Some(c) = self.peek(0) {
            match c {
                b'\n' => {
                    line_start = true;
                    self.at += 1;
                    continue;
                }
                b' ' | b'\t' | b'\r' => {
                    self.at += 1;
                    continue;
                }
                b'#' => self.skip_line(),
                b'"' | b'\'' => self.skip_string(c)?,
                b'[' if line_start && depth == 0 => {
                    let start = self.line_start_of(self.at);
                    let path = self.header()?;
                    self.skip_line();
                    headers.push(Header {
                        start,
                        body: self.at,
                        path,
                    });
                    line_start = true;
                    continue;
                }
                b'[' | b'{' => {
                    depth += 1;
                    self.at += 1;
                }
                b']' | b'}' => {
                    depth = depth.checked_sub(1)?;
                    self.at += 1;
                }
                _ => self.at += 1,
            }
            line_start = false;
        }
        Some(headers)
    }

    fn line_start_of(&self, at: usize) -> usize {
        self.text[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
    }

    /// Up to (not past) the next newline.
    fn skip_line(&mut self) {
        while let Some(c) = self.peek(0) {
            if c == b'\n' {
                return;
            }
            self.at += 1;
        }
    }

    /// A basic or literal string, one line or multi-line.
    fn skip_string(&mut self, quote: u8) -> Option<()> {
        let multi = self.peek(1) == Some(quote) && self.peek(2) == Some(quote);
        self.at += if multi { 3 } else { 1 };
        loop {
            let c = self.peek(0)?;
            if c == b'\\' && quote == b'"' {
                self.at += 2;
                continue;
            }
            if c == quote {
                if !multi {
                    self.at += 1;
                    return Some(());
                }
                if self.peek(1) == Some(quote) && self.peek(2) == Some(quote) {
                    self.at += 3;
                    // Up to two more quotes belong to the content.
                    for _ in 0..2 {
                        if self.peek(0) == Some(quote) {
                            self.at += 1;
                        }
                    }
                    return Some(());
                }
            } else if c == b'\n' && !multi {
                return None;
            }
            self.at += 1;
        }
    }

    /// `[a.b."c"]` or `[[a.b]]`: the keys, decoded.
    fn header(&mut self) -> Option<Vec<String>> {
        self.at += 1;
        if self.peek(0) == Some(b'[') {
            self.at += 1;
        }
        let mut path = Vec::new();
        loop {
            self.skip_blanks();
            path.push(self.key()?);
            self.skip_blanks();
            match self.peek(0)? {
                b'.' => self.at += 1,
                b']' => return Some(path),
                _ => return None,
            }
        }
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(0), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn key(&mut self) -> Option<String> {
        let start = self.at;
        match self.peek(0)? {
            b'\'' => {
                let end = start + 1 + self.text[start + 1..].iter().position(|&b| b == b'\'')?;
                self.at = end + 1;
                String::from_utf8(self.text[start + 1..end].to_vec()).ok()
            }
            b'"' => {
                self.skip_string(b'"')?;
                let quoted = std::str::from_utf8(&self.text[start..self.at]).ok()?;
                toml::from_str::<toml::Value>(&format!("k = {quoted}"))
                    .ok()?
                    .get("k")?
                    .as_str()
                    .map(str::to_string)
            }
            _ => {
                while matches!(
                    self.peek(0),
                    Some(b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')
                ) {
                    self.at += 1;
                }
                (self.at > start)
                    .then(|| String::from_utf8_lossy(&self.text[start..self.at]).into_owned())
            }
        }
    }
}

/// The index of `model`, loaded from `text` (the file as parsed), or
/// `None` when the file cannot be indexed.
pub fn build(model: &Model, text: &str, hash: &str) -> Option<String> {
    if model.units.len() != 1 {
        return None;
    }
    let segments = segments(text)?;
    let mut own: Vec<Vec<Range<usize>>> = vec![Vec::new(); model.tasks.len()];
    let mut common = Vec::new();
    for (range, owner) in segments {
        match owner {
            Owner::Common => common.push(range),
            Owner::Task(name) => own[model.task(&name)?].push(range),
        }
    }
    let default = model.settings.default.as_ref().map_or("", |(name, _)| name);
    let mut out = format!(
        "{FORMAT}\n{hash}\n{}\ndefault {default}\ncommon",
        env!("CARGO_PKG_VERSION")
    );
    push_ranges(&mut out, &common);
    out.push('\n');
    for (index, task) in model.tasks.iter().enumerate() {
        let Some(reach) = reach(model, index) else {
            continue;
        };
        let mut ranges: Vec<Range<usize>> = reach.iter().flat_map(|&t| own[t].clone()).collect();
        ranges.sort_by_key(|r| r.start);
        for name in std::iter::once(&task.name).chain(&task.aliases) {
            out.push_str("task ");
            out.push_str(name);
            push_ranges(&mut out, &ranges);
            out.push('\n');
        }
    }
    Some(out)
}

fn push_ranges(out: &mut String, ranges: &[Range<usize>]) {
    for r in ranges {
        out.push_str(&format!(" {}-{}", r.start, r.end));
    }
}

/// The tasks `start` reaches through calls (itself included), or `None`
/// when a call is a template (it may name any task).
fn reach(model: &Model, start: usize) -> Option<Vec<usize>> {
    let mut seen = vec![false; model.tasks.len()];
    let mut todo = vec![start];
    let mut out = Vec::new();
    while let Some(index) = todo.pop() {
        if std::mem::replace(&mut seen[index], true) {
            continue;
        }
        out.push(index);
        let task = &model.tasks[index];
        for call in task.calls() {
            if !call.template.is_literal() {
                return None;
            }
            let calls =
                crate::args::parse_call(model, &call.template.source, &call.template.span, task)
                    .ok()?;
            todo.extend(calls.iter().map(|c| c.task));
        }
    }
    Some(out)
}

/// The part of `text` that running `words` needs, as a document with a
/// map back to `text`'s offsets; `None` when the index cannot say.
pub fn part(index: &str, text: &str, hash: &str, words: &[&str]) -> Option<Part> {
    let mut lines = index.lines();
    if lines.next()? != FORMAT
        || lines.next()? != hash
        || lines.next()? != env!("CARGO_PKG_VERSION")
    {
        return None;
    }
    let default = lines.next()?.strip_prefix("default ")?;
    let words = if words.is_empty() && !default.is_empty() {
        &[default][..]
    } else {
        words
    };
    let mut ranges = ranges(lines.next()?.strip_prefix("common")?)?;
    let mut found = false;
    for line in lines {
        let rest = line.strip_prefix("task ")?;
        let (name, list) = rest.split_once(' ').unwrap_or((rest, ""));
        if words.contains(&name) {
            ranges.extend(self::ranges(list)?);
            found = true;
        }
    }
    if !found {
        return None;
    }
    ranges.sort_by_key(|r| r.start);
    ranges.dedup();
    let mut part = Part {
        text: String::new(),
        map: Vec::with_capacity(ranges.len()),
    };
    for r in ranges {
        part.map.push((part.text.len(), r.start));
        part.text.push_str(text.get(r)?);
    }
    Some(part)
}

fn ranges(list: &str) -> Option<Vec<Range<usize>>> {
    list.split_whitespace()
        .map(|r| {
            let (a, b) = r.split_once('-')?;
            Some(a.parse().ok()?..b.parse().ok()?)
        })
        .collect()
}

/// A document made of pieces of the file, and where each piece came from.
pub struct Part {
    pub text: String,
    /// (offset in `text`, offset in the file), in order.
    map: Vec<(usize, usize)>,
}

impl Part {
    /// The file's range for a range of the part.
    pub fn original(&self, range: Range<usize>) -> Range<usize> {
        let start = self.offset(range.start, false);
        let end = if range.end > range.start {
            self.offset(range.end, true)
        } else {
            start
        };
        start..end
    }

    /// `end`: the offset closes a range, so one at a piece's first byte
    /// belongs to the piece before.
    fn offset(&self, at: usize, end: bool) -> usize {
        let i = self
            .map
            .partition_point(|&(from, _)| if end { from < at } else { from <= at });
        match i.checked_sub(1).and_then(|i| self.map.get(i)) {
            Some(&(from, to)) => to + (at - from),
            None => at,
        }
    }
}

/// The index beside the file in `root`, if there is one and it is a
/// regular file (opened without blocking: a FIFO there never holds a run).
pub fn read(root: &Path) -> Option<String> {
    read_state(root, NAME)
}

/// The file `name` of `.tasker/` in `root`, as text, if it is a regular
/// file (`state::read_regular`).
pub(super) fn read_state(root: &Path, name: &str) -> Option<String> {
    let bytes = crate::state::read_regular(&root.join(".tasker").join(name))?;
    String::from_utf8(bytes).ok()
}

/// Write the index; a failure only costs the next run the whole load.
pub fn write(root: &Path, index: &str) {
    if let Ok(dir) = crate::state::dir(root, "") {
        let _ = crate::state::write_atomically(&dir.join(NAME), index.as_bytes());
    }
}

/// The hash the index is keyed by.
pub fn hash(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(text: &str) -> Option<Vec<(String, Owner)>> {
        Some(
            segments(text)?
                .into_iter()
                .map(|(r, o)| (text[r].to_string(), o))
                .collect(),
        )
    }

    fn task(name: &str) -> Owner {
        Owner::Task(name.to_string())
    }

    #[test]
    fn headers_inside_strings_arrays_and_comments_are_not_headers() {
        let text = "# [tasks.no]\n[settings]\njobs = 2\n[tasks.a]\nrun = \"\"\"\n[tasks.not]\n\"\"\"\ndeps = [\n[\"x\"][0],\n]\n[[tasks.a.args]]\nname = 'v'\n[tasks.\"b.c\"]\nrun = '''\n[x]'''\n  [ tasks . d ]\nrun = \"x\"\n";
        let got = owners(text).unwrap();
        let names: Vec<_> = got.iter().map(|(_, o)| o.clone()).collect();
        assert_eq!(
            names,
            [Owner::Common, task("a"), task("a"), task("b.c"), task("d")]
        );
        assert_eq!(
            got[0].0,
            "# [tasks.no]\n[settings]\njobs = 2\n".split_at(13).1
        );
        assert!(got[1].0.contains("[tasks.not]"));
    }

    #[test]
    fn keys_outside_tables_make_the_file_unindexed() {
        assert!(segments("tasks.a.run = \"x\"\n[settings]\n").is_none());
        assert!(segments("[tasks]\na.run = \"x\"\n").is_none());
        assert!(segments("# only a comment\n\n[tasks]\n[tasks.a]\nrun = \"x\"\n").is_some());
    }

    /// Load `text` whole and, for every indexed task, through its part:
    /// each task the part holds must be the whole file's, spans and all.
    fn same_tasks_through_parts(text: &str) -> usize {
        use std::sync::Arc;
        let dir = std::env::temp_dir();
        let file = || {
            Arc::new(crate::error::SourceFile {
                display: "tasks.toml".to_string(),
                path: dir.join("tasks.toml"),
                text: text.to_string(),
            })
        };
        let whole = super::super::load::load(file(), dir.clone(), &dir, false, None).unwrap();
        let index = build(&whole, text, "h").expect("indexed");
        let mut checked = 0;
        for task in &whole.tasks {
            let part = part(&index, text, "h", &[task.name.as_str()]).expect("a part");
            assert!(part.text.len() < text.len());
            let model =
                super::super::load::load(file(), dir.clone(), &dir, false, Some(Arc::new(part)))
                    .unwrap();
            for mine in &model.tasks {
                let theirs = &whole.tasks[whole.task(&mine.name).unwrap()];
                assert_eq!(format!("{mine:?}"), format!("{theirs:?}"));
                checked += 1;
            }
            assert_eq!(format!("{:?}", model.vars), format!("{:?}", whole.vars));
            assert_eq!(
                format!("{:?}", model.settings),
                format!("{:?}", whole.settings)
            );
        }
        checked
    }

    #[test]
    fn parts_load_the_same_tasks_as_the_whole_file() {
        let text = r####"# Shapes a table scanner can trip on: [tasks.x]
[settings]
jobs = 2

[vars]
who = { sh = "echo [tasks.fake]" }

[env]
A = "1"

[tasks.build]
help = "Build, with a \"quoted\" help and a [bracket]"
deps = ["gen", "lint --fix"]
aliases = ["b"]
run = """
echo building
[tasks.not_a_table]
echo done"""

[[tasks.build.args]]
name = "release"
type = "bool"

[tasks.gen]
run = '''
[[tasks.also_not]]
'''
sources = ["src/**/*.rs"]

[tasks."lint"]
run = [
  { sh = "echo ]" },
  { cmd = ["echo", "["] },
]

[[tasks.lint.args]]
name = "fix"
type = "bool"

  [ tasks . "quoted-name" ]
run = "echo dotted"
post = ["gen"]

[tasks.last]
run = [{ task = "build --release" }]
"####;
        // build reaches gen and lint; quoted-name reaches gen; last reaches
        // build, gen and lint.
        assert_eq!(same_tasks_through_parts(text), 3 + 1 + 1 + 2 + 4);
    }

    #[test]
    fn a_part_maps_offsets_back_to_the_file() {
        let part = Part {
            text: "abcXYZ".to_string(),
            map: vec![(0, 10), (3, 50)],
        };
        assert_eq!(part.original(0..3), 10..13);
        assert_eq!(part.original(3..5), 50..52);
        assert_eq!(part.original(1..5), 11..52);
        assert_eq!(part.original(4..4), 51..51);
    }
}
