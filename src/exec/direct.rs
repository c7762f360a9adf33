//! The shortcut make takes: a one-line command with no shell syntax at
//! all, for the default shell, is started directly instead of through
//! `sh -e -c`. The result is the same (same program, arguments, directory,
//! environment and exit status) and a run costs one process instead of
//! two. Anything the shell would interpret keeps the shell.

/// Characters that mean something to a POSIX shell (or to bash).
const SHELL_SYNTAX: &[char] = &[
    '#', ';', '&', '|', '<', '>', '(', ')', '{', '}', '$', '`', '\\', '"', '\'', '*', '?', '[',
    ']', '~', '!', '^', '\n', '\r',
];

/// Words that are keywords or builtins of the shell: run through it.
/// (`true` and `false` are not here: the programs behave exactly alike.)
const SHELL_WORDS: &[&str] = &[
    ".", ":", "[", "[[", "alias", "bg", "break", "case", "cd", "command", "continue", "do", "done",
    "echo", "elif", "else", "esac", "eval", "exec", "exit", "export", "fc", "fg", "fi", "for",
    "function", "getopts", "hash", "if", "in", "jobs", "kill", "let", "local", "printf", "pwd",
    "read", "readonly", "return", "select", "set", "shift", "source", "test", "then", "time",
    "times", "trap", "type", "typeset", "ulimit", "umask", "unalias", "unset", "until", "wait",
    "while",
];

/// The default shell, for which the shortcut is known to be exact.
const DEFAULT_SHELL: [&str; 3] = ["sh", "-e", "-c"];

/// The words to run `script` with directly, when that is exactly what the
/// shell would have done.
pub fn argv(shell: &[String], script: &str) -> Option<Vec<String>> {
    if shell.len() != DEFAULT_SHELL.len() || shell.iter().zip(DEFAULT_SHELL).any(|(a, b)| a != b) {
        return None;
    }
    if script.contains(SHELL_SYNTAX) {
        return None;
    }
    // Only blanks and tabs separate words for the shell: any other space
    // (a no-break space, a vertical tab) is part of a word.
    let words: Vec<String> = script
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect();
    let first = words.first()?;
    if SHELL_WORDS.contains(&first.as_str()) || first.contains('=') {
        return None;
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::argv;

    fn sh() -> Vec<String> {
        vec!["sh".into(), "-e".into(), "-c".into()]
    }

    #[test]
    fn plain_commands_run_directly() {
        assert_eq!(
            argv(&sh(), "cargo build --release"),
            Some(vec!["cargo".into(), "build".into(), "--release".into()])
        );
        assert_eq!(
            argv(&sh(), "  ls  -la\t. "),
            Some(vec!["ls".into(), "-la".into(), ".".into()])
        );
        assert_eq!(
            argv(&sh(), "make CC=gcc"),
            Some(vec!["make".into(), "CC=gcc".into()])
        );
    }

    #[test]
    fn anything_the_shell_interprets_keeps_the_shell() {
        for script in [
            "echo hi",
            "cd src",
            "FOO=1 make",
            "ls *.rs",
            "a && b",
            "a; b",
            "a | b",
            "echo $HOME",
            "ls 'a b'",
            "ls ~",
            "a\nb",
            "exit 3",
            "a > out",
            "",
        ] {
            assert_eq!(argv(&sh(), script), None, "{script:?}");
        }
        let bash: Vec<String> = vec!["bash".into(), "-c".into()];
        assert_eq!(argv(&bash, "cargo build"), None);
    }

    #[test]
    fn only_blanks_and_tabs_split_words() {
        assert_eq!(
            argv(&sh(), "touch a\u{a0}b c\u{b}d\u{c}e"),
            Some(vec![
                "touch".into(),
                "a\u{a0}b".into(),
                "c\u{b}d\u{c}e".into()
            ])
        );
    }
}
