//! Terminal colours: on only when the stream is a terminal, `NO_COLOR` is
//! unset and `TERM` is not `dumb`. Every coloured string passes through
//! here.

use std::io::IsTerminal;

#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub color: bool,
}

/// Colours given to runs' prefixes in turn.
const PALETTE: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

impl Style {
    pub fn for_stdout() -> Style {
        Style {
            color: std::io::stdout().is_terminal() && color_allowed(),
        }
    }

    pub fn for_stderr() -> Style {
        Style {
            color: std::io::stderr().is_terminal() && color_allowed(),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    pub fn red(self, text: &str) -> String {
        self.paint("1;31", text)
    }

    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }

    pub fn task(self, text: &str) -> String {
        self.paint("36", text)
    }

    /// The colour of the n-th run's prefix.
    pub fn nth(self, n: usize, text: &str) -> String {
        self.paint(PALETTE[n % PALETTE.len()], text)
    }
}

/// Colours (and anything else that drives the terminal, such as the live
/// status line) are allowed: `NO_COLOR` is unset, and `TERM` is set and
/// not `dumb` (SPEC 6), since a dumb terminal prints escape codes as they
/// are.
pub fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && terminal_capable()
}

fn terminal_capable() -> bool {
    std::env::var_os("TERM").is_some_and(|term| !term.is_empty() && term != "dumb")
}
