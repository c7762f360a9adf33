//! Terminal colours: one decision, made once per invocation from
//! `--color` and the environment conventions (`NO_COLOR`, `CLICOLOR`,
//! `CLICOLOR_FORCE`, `TERM`), read through `anstyle-query` as the crates
//! clap uses read them. Every coloured string passes through here, and the
//! escape codes come from `anstyle`.

use std::io::IsTerminal;
use std::sync::OnceLock;

use anstyle::{AnsiColor, Effects};

/// `--color`: whether tasker's own output is coloured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    // Colour on a terminal that takes it, as the environment allows.
    #[default]
    Auto,
    // Even into a pipe or a file.
    Always,
    Never,
}

static CHOICE: OnceLock<ColorChoice> = OnceLock::new();

/// Fix `--color` for the rest of the invocation; the first call wins.
pub fn set_choice(choice: ColorChoice) {
    let _ = CHOICE.set(choice);
}

fn choice() -> ColorChoice {
    CHOICE.get().copied().unwrap_or_default()
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub color: bool,
}

/// Colours given to runs' prefixes in turn.
const PALETTE: [AnsiColor; 6] = [
    AnsiColor::Cyan,
    AnsiColor::Yellow,
    AnsiColor::Green,
    AnsiColor::Magenta,
    AnsiColor::Blue,
    AnsiColor::Red,
];

impl Style {
    pub fn for_stdout() -> Style {
        Style {
            color: colored(std::io::stdout().is_terminal()),
        }
    }

    pub fn for_stderr() -> Style {
        Style {
            color: colored(std::io::stderr().is_terminal()),
        }
    }

    fn paint(self, style: anstyle::Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    pub fn bold(self, text: &str) -> String {
        self.paint(Effects::BOLD.into(), text)
    }

    pub fn dim(self, text: &str) -> String {
        self.paint(Effects::DIMMED.into(), text)
    }

    pub fn red(self, text: &str) -> String {
        self.paint(AnsiColor::Red.on_default().bold(), text)
    }

    pub fn yellow(self, text: &str) -> String {
        self.paint(AnsiColor::Yellow.on_default(), text)
    }

    pub fn task(self, text: &str) -> String {
        self.paint(AnsiColor::Cyan.on_default(), text)
    }

    /// The colour of the n-th run's prefix.
    pub fn nth(self, n: usize, text: &str) -> String {
        self.paint(PALETTE[n % PALETTE.len()].on_default(), text)
    }
}

/// Whether a stream (a terminal or not) gets colours. `--color always` and
/// `never` decide alone. Otherwise, in the order clap's own crates use:
/// `NO_COLOR` (not empty) turns colours off, `CLICOLOR_FORCE` (not `0`)
/// turns them on, `CLICOLOR=0` off; and then a terminal gets colours when
/// `TERM` is set and not `dumb` (SPEC 6: a dumb terminal prints escape
/// codes as they are).
fn colored(terminal: bool) -> bool {
    match choice() {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let clicolor = anstyle_query::clicolor();
            if anstyle_query::no_color() {
                false
            } else if clicolor_force() {
                true
            } else if clicolor == Some(false) {
                false
            } else {
                terminal && anstyle_query::term_supports_color()
            }
        }
    }
}

/// `CLICOLOR_FORCE` set, not empty and not `0` (the CLICOLOR convention;
/// `anstyle-query` alone would take `0` for a yes).
fn clicolor_force() -> bool {
    anstyle_query::clicolor_force() && std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| v != "0")
}

/// The live status line redraws a line of stderr in place: it needs stderr
/// to be a terminal that takes escape codes (`TERM` set, not `dumb`), and
/// colours on for it.
pub fn status_line_allowed() -> bool {
    std::io::stderr().is_terminal()
        && anstyle_query::term_supports_color()
        && Style::for_stderr().color
}

/// The runs whose output tasker passes through to a coloured stdout are
/// told to keep their colours (`CLICOLOR_FORCE`, `FORCE_COLOR`) even
/// though they write into a pipe; never under `NO_COLOR`.
pub fn runs_keep_colors(out: Style) -> bool {
    out.color && !anstyle_query::no_color()
}
