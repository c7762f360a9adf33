//! Where shell quotes open and close in a command's text, read as `sh`
//! reads them: `'...'` takes everything literally, `"..."` and bare text
//! take a backslash as escaping the next character. The one scanner for
//! the echo's tidying (`echo`) and the quoted-value warning (`lint`).

/// The quoting state after the characters seen so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct ShellQuotes {
    quote: Option<char>,
    escaped: bool,
}

impl ShellQuotes {
    /// Take the next character of the text.
    pub fn step(&mut self, c: char) {
        match (self.quote, c) {
            _ if self.escaped => self.escaped = false,
            (Some('\''), '\'') => self.quote = None,
            (Some('\''), _) => {}
            (_, '\\') => self.escaped = true,
            (Some('"'), '"') => self.quote = None,
            (None, '"' | '\'') => self.quote = Some(c),
            _ => {}
        }
    }

    /// Inside quotes, single or double.
    pub fn inside(&self) -> bool {
        self.quote.is_some()
    }

    /// Text that is not the shell's own (a template tag) was passed over:
    /// a backslash before it escapes nothing after it.
    pub fn skipped(&mut self) {
        self.escaped = false;
    }
}

#[cfg(test)]
mod tests {
    use super::ShellQuotes;

    fn inside_after(text: &str) -> bool {
        let mut quotes = ShellQuotes::default();
        text.chars().for_each(|c| quotes.step(c));
        quotes.inside()
    }

    #[test]
    fn quotes_open_and_close_as_sh_reads_them() {
        assert!(inside_after("echo 'a"));
        assert!(!inside_after("echo 'a\\'"));
        assert!(inside_after("echo \"a\\\""));
        assert!(!inside_after("echo \\\"a"));
        assert!(inside_after("echo \"it's"));
        assert!(!inside_after("echo 'say \"hi' x"));
    }
}
