//! Shell completion. `tasker --completions SHELL` prints a small script
//! that, at every TAB, calls `tasker --complete SHELL INDEX -- WORDS...`
//! with the words typed so far; that hidden entry reads the `tasks.toml`
//! found from the shell's current directory (never running anything: no
//! `sh` var, no dotenv) and prints the candidates for word INDEX, one a
//! line. Nothing about the tasks is frozen into the script.

use std::path::{Path, PathBuf};

use clap::CommandFactory;

use crate::cli::{Cli, Shell};
use crate::model::{Arg, ArgType, Model, Task};

/// The hidden entry the scripts call: `--complete SHELL INDEX -- WORDS...`.
pub const ENTRY: &str = "--complete";

/// The script for `shell`.
pub fn render(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => BASH,
        Shell::Zsh => ZSH,
        Shell::Fish => FISH,
        Shell::Powershell => POWERSHELL,
        Shell::Elvish => ELVISH,
    }
}

const BASH: &str = r#"# tasker completions for bash: eval "$(tasker --completions bash)"
# Each TAB asks tasker about the tasks.toml found from the current directory.
_tasker() {
    local IFS=$'\n'
    COMPREPLY=($(command tasker --complete bash "$COMP_CWORD" -- "${COMP_WORDS[@]}" 2>/dev/null))
}
complete -o bashdefault -o default -F _tasker tasker
"#;

const ZSH: &str = r#"#compdef tasker
# tasker completions for zsh: eval "$(tasker --completions zsh)"
# Each TAB asks tasker about the tasks.toml found from the current directory.
_tasker() {
    local -a candidates
    candidates=(${(f)"$(command tasker --complete zsh $((CURRENT - 1)) -- "${words[@]}" 2>/dev/null)"})
    if (( ${#candidates} )); then
        compadd -- "${candidates[@]}"
    else
        _files
    fi
}
compdef _tasker tasker
"#;

const FISH: &str = r#"# tasker completions for fish: tasker --completions fish | source
# Each TAB asks tasker about the tasks.toml found from the current directory.
function __tasker_complete
    set -l words (commandline -opc)
    command tasker --complete fish (count $words) -- $words (commandline -ct) 2>/dev/null
end
complete -c tasker -f -a '(__tasker_complete)'
"#;

const POWERSHELL: &str = r#"# tasker completions for PowerShell: tasker --completions powershell | Out-String | Invoke-Expression
# Each TAB asks tasker about the tasks.toml found from the current directory.
Register-ArgumentCompleter -Native -CommandName tasker -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)
    $words = @($commandAst.CommandElements | ForEach-Object { "$_" })
    if ($wordToComplete -eq '') { $words += '' }
    $index = $words.Count - 1
    & tasker --complete powershell $index '--' @words 2>$null | ForEach-Object {
        [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
    }
}
"#;

const ELVISH: &str = r#"# tasker completions for elvish: eval (tasker --completions elvish | slurp)
# Each TAB asks tasker about the tasks.toml found from the current directory.
set edit:completion:arg-completer[tasker] = {|@words|
    var index = (- (count $words) 1)
    tasker --complete elvish $index -- $@words 2>/dev/null
}
"#;

/// `--complete SHELL INDEX -- WORDS...` (`args` starts after `--complete`):
/// the candidates, one a line. Anything malformed, or no file found,
/// gives no candidates: a TAB never prints an error.
pub fn complete(args: &[String], cwd: &Path) -> String {
    let (Some(shell), Some(index)) = (
        args.first(),
        args.get(1).and_then(|i| i.parse::<usize>().ok()),
    ) else {
        return String::new();
    };
    // Windows PowerShell drops a bare `--` on its way to a program; the
    // first word is the program's name, never `--`, so it may be missing.
    let skip = if args.get(2).is_some_and(|w| w == "--") {
        3
    } else {
        2
    };
    let words = args.get(skip..).unwrap_or_default();
    let (words, index, fragment) = if shell == "bash" {
        rejoin_bash_words(words, index)
    } else {
        let cur = words.get(index).cloned().unwrap_or_default();
        (words.to_vec(), index, cur)
    };
    let cur = words.get(index).map(String::as_str).unwrap_or("");
    let before = &words[..index.min(words.len())];
    let mut out = String::new();
    // Bash replaces only the part of the word after its last `:` or `=`.
    let strip = cur.len().saturating_sub(fragment.len());
    let (found, model) = candidates(before, cur, cwd);
    for candidate in found {
        if candidate.starts_with(cur) {
            out.push_str(&candidate[strip..]);
            // fish shows a description after a tab: a task's help.
            if let (true, Some(help)) = (
                shell == "fish",
                model.as_ref().and_then(|m| help_of(m, &candidate)),
            ) {
                out.push('\t');
                out.push_str(help);
            }
            out.push('\n');
        }
    }
    out
}

/// The first line of the help of the task `name` names, when it has one.
fn help_of<'m>(model: &'m Model, name: &str) -> Option<&'m str> {
    let task = &model.tasks[model.task(name)?];
    Some(task.help_first_line()).filter(|h| !h.is_empty())
}

/// Bash splits a word at `:` and `=` (`ns:build` is `ns`, `:`, `build`):
/// glue those pieces back, and return the words, the index of the word
/// being completed, and the piece of it that bash will replace.
fn rejoin_bash_words(words: &[String], index: usize) -> (Vec<String>, usize, String) {
    let breaks = |w: &str| !w.is_empty() && w.chars().all(|c| c == ':' || c == '=');
    let fragment = words.get(index).cloned().unwrap_or_default();
    let mut joined: Vec<String> = Vec::new();
    let mut new_index = None;
    let mut glue_next = false;
    for (i, word) in words.iter().enumerate() {
        let glue = glue_next || (breaks(word) && !joined.is_empty());
        glue_next = breaks(word);
        if glue && !joined.is_empty() {
            joined.last_mut().expect("not empty").push_str(word);
        } else {
            joined.push(word.clone());
        }
        if i == index {
            new_index = Some(joined.len() - 1);
        }
    }
    let new_index = new_index.unwrap_or(joined.len());
    (joined, new_index, fragment)
}

/// Everything that may stand at the word after `before` (the words typed
/// so far, the program name first).
fn candidates(before: &[String], cur: &str, cwd: &Path) -> (Vec<String>, Option<Model>) {
    let os: Vec<std::ffi::OsString> = before.iter().map(Into::into).collect();
    let first_task = crate::cli::first_task_word(&os).min(before.len());
    let options = &before[1.min(before.len())..first_task];
    // A `--` before the first task is skipped, as on a real command line.
    let first_task = first_task + usize::from(before.get(first_task).is_some_and(|w| w == "--"));
    let model = load(options, cwd);
    let found = if first_task == before.len() {
        if let Some(values) = option_values(options.last().map(String::as_str), model.as_ref()) {
            values
        } else if cur.starts_with('-') {
            core_flags()
        } else {
            model.as_ref().map(task_names).unwrap_or_default()
        }
    } else {
        match &model {
            Some(model) => task_candidates(model, &before[first_task..], cur),
            None => Vec::new(),
        }
    };
    (found, model)
}

/// The file the command line would use (`-f`, `-C` among the options
/// typed), loaded without running anything.
fn load(options: &[String], cwd: &Path) -> Option<Model> {
    let value_of = |short: &str, long: &str| -> Option<PathBuf> {
        let mut found = None;
        for (i, word) in options.iter().enumerate() {
            if word == short || word == long {
                found = options.get(i + 1).map(PathBuf::from);
            } else if let Some(v) = word.strip_prefix(&format!("{long}=")) {
                found = Some(PathBuf::from(v));
            } else if let Some(v) = word.strip_prefix(short).filter(|v| !v.is_empty()) {
                found = Some(PathBuf::from(v));
            }
        }
        found
    };
    let cwd = match value_of("-C", "--dir") {
        Some(dir) => cwd.join(dir),
        None => cwd.to_path_buf(),
    };
    let file = value_of("-f", "--file");
    let path = crate::file::find(&cwd, file.as_deref()).ok()?;
    crate::file::load(&path, &cwd).ok()
}

/// The values of tasker's own option `option` when it takes one: its
/// possible values from the declaration in `cli.rs`, the shells, the
/// task names for `--show`, none for a path or a number (the shell
/// completes files then). `None` when `option` takes no value.
fn option_values(option: Option<&str>, model: Option<&Model>) -> Option<Vec<String>> {
    let option = option?;
    if !option.starts_with('-') || option.contains('=') {
        return None;
    }
    let long = crate::cli::own_option(option)?;
    let command = Cli::command();
    let arg = command
        .get_arguments()
        .find(|a| a.get_long() == Some(&long[2..]))?;
    if !arg.get_action().takes_values() || long == "--evaluate" {
        return None;
    }
    Some(match long.as_str() {
        "--show" => model.map(task_names).unwrap_or_default(),
        _ => arg
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_string())
            .collect(),
    })
}

/// tasker's own flags, from the one declaration in `cli.rs`.
fn core_flags() -> Vec<String> {
    let command = Cli::command();
    let mut flags = Vec::new();
    for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
        if let Some(long) = arg.get_long() {
            flags.push(format!("--{long}"));
        }
        if let Some(short) = arg.get_short() {
            flags.push(format!("-{short}"));
        }
    }
    flags.extend(["--help", "-h", "--version", "-V"].map(String::from));
    flags
}

/// The names (and aliases) of the tasks the command line may call.
fn task_names(model: &Model) -> Vec<String> {
    let mut names = Vec::new();
    for task in model.tasks.iter().filter(|t| !t.is_hidden()) {
        names.push(task.name.clone());
        names.extend(task.aliases.iter().cloned());
    }
    names
}

/// Where the words after the first task name leave the command line.
struct TaskState<'m> {
    task: Option<&'m Task>,
    /// Positional arguments of `task` filled so far.
    filled: usize,
    /// A flag of `task` whose value comes next.
    pending: Option<&'m Arg>,
    /// After `--`: the words are the task's `extra`.
    extra: bool,
}

fn takes_value(arg: &Arg) -> bool {
    !matches!(arg.ty, ArgType::Bool | ArgType::Count)
}

/// The flag `word` (`--name`, `--no-name`, `-s`, `-sVALUE`, `--name=V`)
/// names among `task`'s arguments, and whether its value is still to come.
fn flag_of<'m>(task: &'m Task, word: &str) -> Option<(&'m Arg, bool)> {
    if let Some(long) = word.strip_prefix("--") {
        let (name, inline) = match long.split_once('=') {
            Some((name, _)) => (name, true),
            None => (long, false),
        };
        let plain = task
            .args
            .iter()
            .find(|a| !a.short_only() && a.long_name() == *name);
        let negated = name
            .strip_prefix("no-")
            .and_then(|n| task.args.iter().find(|a| a.long_name() == *n))
            .filter(|a| a.ty == ArgType::Bool);
        let arg = plain.or(negated)?;
        return Some((arg, !inline && takes_value(arg) && plain.is_some()));
    }
    let mut chars = word.strip_prefix('-')?.chars();
    let short = chars.next()?;
    let arg = task.args.iter().find(|a| a.short == Some(short))?;
    Some((arg, takes_value(arg) && chars.next().is_none()))
}

fn walk<'m>(model: &'m Model, words: &[String]) -> TaskState<'m> {
    let mut state = TaskState {
        task: None,
        filled: 0,
        pending: None,
        extra: false,
    };
    for word in words {
        if state.extra || state.pending.take().is_some() {
            continue;
        }
        if word == "--" {
            state.extra = true;
            continue;
        }
        if word.starts_with('-') && word.len() > 1 {
            if let Some((arg, value_next)) = state.task.and_then(|t| flag_of(t, word)) {
                if value_next {
                    state.pending = Some(arg);
                }
            }
            continue;
        }
        let slot = state.task.and_then(|t| positional(t, state.filled));
        let names_task = model.task(word).is_some();
        match slot {
            Some(arg) if arg.required() || !names_task => {
                if arg.ty != ArgType::List {
                    state.filled += 1;
                }
            }
            _ => {
                state.task = model.task(word).map(|i| &model.tasks[i]);
                state.filled = 0;
            }
        }
    }
    state
}

/// The `n`-th positional argument of `task`.
fn positional(task: &Task, n: usize) -> Option<&Arg> {
    task.args.iter().filter(|a| a.positional).nth(n)
}

fn choices(arg: &Arg) -> Vec<String> {
    arg.choices.iter().map(|c| c.display()).collect()
}

/// The candidates among the words after the first task name.
fn task_candidates(model: &Model, words: &[String], cur: &str) -> Vec<String> {
    let state = walk(model, words);
    if state.extra {
        return Vec::new();
    }
    if let Some(arg) = state.pending {
        return choices(arg);
    }
    let Some(task) = state.task else {
        return task_names(model);
    };
    if cur.starts_with('-') {
        if let Some((flag, _)) = cur.split_once('=') {
            let Some((arg, _)) = flag_of(task, flag) else {
                return Vec::new();
            };
            return choices(arg)
                .into_iter()
                .map(|c| format!("{flag}={c}"))
                .collect();
        }
        let mut flags = Vec::new();
        for arg in &task.args {
            if !arg.short_only() {
                flags.push(arg.flag());
            }
            if arg.ty == ArgType::Bool {
                flags.push(format!("--no-{}", arg.long_name()));
            }
            if let Some(c) = arg.short {
                flags.push(format!("-{c}"));
            }
        }
        flags.extend(["--help".to_string(), "-h".to_string()]);
        return flags;
    }
    match positional(task, state.filled) {
        Some(arg) if arg.required() => choices(arg),
        Some(arg) => choices(arg).into_iter().chain(task_names(model)).collect(),
        None => task_names(model),
    }
}

#[cfg(test)]
mod tests {
    use super::rejoin_bash_words;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn bash_pieces_split_at_colons_and_equals_are_glued_back() {
        let (w, i, f) = rejoin_bash_words(&words(&["tasker", "ns", ":", "bu"]), 3);
        assert_eq!((w, i, f.as_str()), (words(&["tasker", "ns:bu"]), 1, "bu"));
        let (w, i, f) = rejoin_bash_words(&words(&["tasker", "ns", ":"]), 2);
        assert_eq!((w, i, f.as_str()), (words(&["tasker", "ns:"]), 1, ":"));
        let (w, i, f) = rejoin_bash_words(&words(&["tasker", "t", "--env", "=", "p"]), 4);
        assert_eq!(
            (w, i, f.as_str()),
            (words(&["tasker", "t", "--env=p"]), 2, "p")
        );
        let (w, i, f) = rejoin_bash_words(&words(&["tasker", "b", ""]), 2);
        assert_eq!((w, i, f.as_str()), (words(&["tasker", "b", ""]), 2, ""));
    }
}
