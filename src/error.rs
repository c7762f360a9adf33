//! The one error type of tasker. Every failure that reaches the user is an
//! `Error`: it knows its exit status, where in which file it points (if
//! anywhere), and an optional suggestion. Rendering lives here too, so every
//! message has the same shape.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

/// A file whose text is kept for error messages.
#[derive(Debug, PartialEq)]
pub struct SourceFile {
    /// The path as shown to the user (relative to where tasker was started
    /// when that is shorter).
    pub display: String,
    pub path: std::path::PathBuf,
    pub text: String,
}

/// A place in a source file.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub file: Arc<SourceFile>,
    pub range: Range<usize>,
}

impl Span {
    pub fn new(file: &Arc<SourceFile>, range: Range<usize>) -> Span {
        Span {
            file: Arc::clone(file),
            range,
        }
    }

    /// 1-based line and column of the start of the span.
    pub fn line_col(&self) -> (usize, usize) {
        let text = &self.file.text;
        let start = widen_to_chars(text, self.range.clone()).start;
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(before.chars().count(), |nl| {
            before[nl + 1..].chars().count()
        }) + 1;
        (line, col)
    }
}

/// Why tasker stops; decides the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A bad command line or a bad file: exit 2, nothing ran.
    Usage,
    /// A run failed with this status.
    Run(i32),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    pub span: Option<Span>,
    /// Label under the marked place.
    pub label: Option<String>,
    /// Extra lines: suggestions and explanations.
    pub help: Vec<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn usage(message: impl Into<String>) -> Error {
        Error {
            kind: Kind::Usage,
            message: message.into(),
            span: None,
            label: None,
            help: Vec::new(),
        }
    }

    pub fn at(span: &Span, message: impl Into<String>) -> Error {
        Error {
            span: Some(span.clone()),
            ..Error::usage(message)
        }
    }

    pub fn run(status: i32, message: impl Into<String>) -> Error {
        Error {
            kind: Kind::Run(status),
            ..Error::usage(message)
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Error {
        self.label = Some(label.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Error {
        self.help.push(help.into());
        self
    }

    /// Add "did you mean" when a near name exists.
    pub fn suggest<'a>(self, wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Error {
        match closest(wrong, candidates) {
            Some(near) => self.with_help(did_you_mean(near)),
            None => self,
        }
    }

    /// Add "did you mean" when a near name exists, and `otherwise` as the
    /// help when none does.
    pub fn suggest_or<'a>(
        self,
        wrong: &str,
        candidates: impl IntoIterator<Item = &'a str>,
        otherwise: impl Into<String>,
    ) -> Error {
        match closest(wrong, candidates) {
            Some(near) => self.with_help(did_you_mean(near)),
            None => self.with_help(otherwise),
        }
    }

    /// Point an error that came from parsing a call's words at the call.
    pub fn relocate(mut self, span: &Span, task: &str) -> Error {
        if self.span.is_none() {
            self.span = Some(span.clone());
            self.message = format!("{} (in a call from task `{task}`)", self.message);
            self.label.get_or_insert_with(|| "in this call".to_string());
        }
        self
    }

    pub fn exit_code(&self) -> i32 {
        match self.kind {
            Kind::Usage => 2,
            Kind::Run(code) => code,
        }
    }

    /// The text shown to the user, in rustc's shape when the error points
    /// into a file.
    pub fn render(&self, color: bool) -> String {
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let mut groups = Vec::new();
        let title = Level::ERROR.primary_title(self.message.as_str());
        let group = match &self.span {
            Some(span) => {
                let file = &span.file;
                let range = widen_to_chars(&file.text, span.range.clone());
                let mut annotation = AnnotationKind::Primary.span(range);
                if let Some(label) = &self.label {
                    annotation = annotation.label(label.as_str());
                }
                title.element(
                    Snippet::source(file.text.as_str())
                        .path(file.display.as_str())
                        .fold(true)
                        .annotation(annotation),
                )
            }
            None => Group::with_title(title),
        };
        groups.push(group);
        let mut out = renderer.render(&groups);
        for help in &self.help {
            out.push('\n');
            if color {
                out.push_str("\x1b[1;36mhelp\x1b[0m: ");
            } else {
                out.push_str("help: ");
            }
            out.push_str(help);
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// `range` grown to start and end on character boundaries of `text`.
pub(crate) fn widen_to_chars(text: &str, range: std::ops::Range<usize>) -> std::ops::Range<usize> {
    let mut end = range.end.min(text.len());
    let mut start = range.start.min(end);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// The one wording of a suggestion: "did you mean `NEAR`?".
pub fn did_you_mean(near: impl fmt::Display) -> String {
    format!("did you mean `{near}`?")
}

/// "a, b and c": names in a sentence.
pub fn listed(names: &[impl AsRef<str>]) -> String {
    match names {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [rest @ .., last] => {
            let rest: Vec<&str> = rest.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", rest.join(", "), last.as_ref())
        }
    }
}

/// The candidate nearest to `wrong`, when it is near enough to be a likely
/// typo.
pub fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(wrong, candidate);
        let close = score > 0.8
            || strsim::damerau_levenshtein(wrong, candidate)
                <= wrong.len().min(candidate.len()) / 3
                && !candidate.is_empty();
        if close && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// "a directory", "a FIFO", ... for messages.
pub fn kind_of(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        return "a directory";
    }
    if kind.is_file() {
        return "a file";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        } else if kind.is_char_device() {
            return "a character device";
        } else if kind.is_block_device() {
            return "a block device";
        } else if kind.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_and_ignores_strangers() {
        assert_eq!(closest("hlep", ["help", "run", "deps"]), Some("help"));
        assert_eq!(closest("biuld", ["build", "test"]), Some("build"));
        assert_eq!(closest("zzz", ["build", "test"]), None);
    }

    #[test]
    fn line_col_is_one_based() {
        let file = Arc::new(SourceFile {
            display: "t.toml".into(),
            path: "t.toml".into(),
            text: "a = 1\nbé = 2\n".into(),
        });
        assert_eq!(Span::new(&file, 0..1).line_col(), (1, 1));
        assert_eq!(Span::new(&file, 6..8).line_col(), (2, 1));
        assert_eq!(Span::new(&file, 12..13).line_col(), (2, 6));
    }
}
