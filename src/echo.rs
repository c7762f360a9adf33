//! How a command reads when tasker echoes it (`[build] $ cargo build`):
//! the text that ran, less the blanks that template blocks which rendered
//! to nothing leave behind (`cargo build {% if release %}--release{% endif %}`
//! echoes `cargo build`, not `cargo build `). Display only: the shell
//! always gets the rendered text unchanged.

use crate::quotes::ShellQuotes;

/// Drop blank lines, trailing blanks and the indentation all lines share,
/// and squeeze runs of spaces between words to one; further indentation
/// and anything inside quotes stay as they are.
pub fn tidy(command: &str) -> String {
    // Each kept line, and whether it starts outside quotes.
    let mut lines: Vec<(String, bool)> = Vec::new();
    let mut quotes = ShellQuotes::default();
    for line in command.split('\n') {
        let in_quote_at_start = quotes.inside();
        if !in_quote_at_start && line.trim().is_empty() {
            continue;
        }
        let mut text = String::with_capacity(line.len());
        let mut started = in_quote_at_start;
        for c in line.chars() {
            if !quotes.inside() && c == ' ' && started && text.ends_with(' ') {
                continue;
            }
            if !c.is_whitespace() {
                started = true;
            }
            text.push(c);
            quotes.step(c);
        }
        if !quotes.inside() {
            let kept = text.trim_end().len();
            text.truncate(kept);
        }
        lines.push((text, !in_quote_at_start));
    }
    let indent = lines
        .iter()
        .filter(|(_, outside)| *outside)
        .map(|(l, _)| l.len() - l.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    let lines: Vec<&str> = lines
        .iter()
        .map(|(l, outside)| if *outside { &l[indent..] } else { l.as_str() })
        .collect();
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::tidy;

    #[test]
    fn blanks_left_by_empty_blocks_go() {
        assert_eq!(tidy("cargo build "), "cargo build");
        assert_eq!(tidy("echo a  b   c"), "echo a b c");
        assert_eq!(
            tidy("  echo one\n  \n    echo two\n  "),
            "echo one\n  echo two"
        );
    }

    #[test]
    fn quoted_text_is_kept_exactly() {
        assert_eq!(tidy("echo 'a  b'  \"c  d\""), "echo 'a  b' \"c  d\"");
        assert_eq!(tidy("echo \"x\\\"  y\"  z"), "echo \"x\\\"  y\" z");
        assert_eq!(tidy("echo 'one\n\n  two  '"), "echo 'one\n\n  two  '");
    }
}
