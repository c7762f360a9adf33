//! `tasker --completions SHELL`: a completion script for tasker's own
//! options, the tasks of the `tasks.toml` found from here (names and
//! aliases) and each task's flags. The names are written into the script,
//! so it is generated again after the tasks change.

use clap::CommandFactory;

use crate::cli::Cli;
use crate::error::{Error, Result};
use crate::model::{ArgType, Model};

pub const SHELLS: [&str; 5] = ["bash", "zsh", "fish", "powershell", "elvish"];

/// Every task name (aliases too) with the flags that task takes.
fn table(model: Option<&Model>) -> Vec<(String, Vec<String>)> {
    let Some(model) = model else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for task in &model.tasks {
        let mut flags = vec!["--help".to_string()];
        for arg in &task.args {
            flags.push(arg.flag());
            if arg.ty == ArgType::Bool {
                flags.push(format!("--no-{}", &arg.flag()[2..]));
            }
            if let Some(c) = arg.short {
                flags.push(format!("-{c}"));
            }
        }
        for name in std::iter::once(&task.name).chain(&task.aliases) {
            rows.push((name.clone(), flags.clone()));
        }
    }
    rows
}

/// tasker's own flags, from the one declaration in `cli.rs`.
fn core_flags() -> Vec<String> {
    let command = Cli::command();
    let mut flags = Vec::new();
    for arg in command.get_arguments() {
        if let Some(long) = arg.get_long() {
            flags.push(format!("--{long}"));
        }
        if let Some(short) = arg.get_short() {
            flags.push(format!("-{short}"));
        }
    }
    flags.extend([
        "--help".to_string(),
        "-h".into(),
        "--version".into(),
        "-V".into(),
    ]);
    flags
}

/// A word list safe inside single quotes in every shell here: names and
/// flags hold only letters, digits, `_`, `-` and `:`.
fn words(list: &[String]) -> String {
    list.join(" ")
}

pub fn render(shell: &str, model: Option<&Model>) -> Result<String> {
    let rows = table(model);
    let names: Vec<String> = rows.iter().map(|(n, _)| n.clone()).collect();
    let core = core_flags();
    Ok(match shell {
        "bash" | "zsh" => {
            let mut cases = String::new();
            for (name, flags) in &rows {
                cases.push_str(&format!("        {name}) flags='{}' ;;\n", words(flags)));
            }
            let prelude = if shell == "zsh" {
                "autoload -U +X bashcompinit && bashcompinit\n"
            } else {
                ""
            };
            format!(
                "# tasker completions for {shell}: eval \"$(tasker --completions {shell})\"\n\
                 {prelude}_tasker() {{\n    local cur=\"${{COMP_WORDS[COMP_CWORD]}}\" task='' flags i\n    \
                 local tasks='{tasks}'\n    \
                 for ((i = 1; i < COMP_CWORD; i++)); do\n        \
                 case \" $tasks \" in *\" ${{COMP_WORDS[i]}} \"*) task=\"${{COMP_WORDS[i]}}\" ;; esac\n    \
                 done\n    \
                 case \"$task\" in\n        '') flags='{core}' ;;\n{cases}        *) flags='' ;;\n    esac\n    \
                 if [[ \"$cur\" == -* ]]; then\n        COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n    \
                 else\n        COMPREPLY=($(compgen -W \"$tasks\" -- \"$cur\"))\n    fi\n}}\n\
                 complete -F _tasker tasker\n",
                tasks = words(&names),
                core = words(&core),
            )
        }
        "fish" => {
            let mut out = String::from("# tasker completions for fish: tasker --completions fish | source\ncomplete -c tasker -f\n");
            for flag in core.iter().filter(|f| f.starts_with("--")) {
                out.push_str(&format!(
                    "complete -c tasker -n 'not __fish_seen_subcommand_from {}' -l {}\n",
                    words(&names),
                    &flag[2..]
                ));
            }
            if !names.is_empty() {
                out.push_str(&format!("complete -c tasker -a '{}'\n", words(&names)));
            }
            for (name, flags) in &rows {
                for flag in flags.iter().filter(|f| f.starts_with("--")) {
                    out.push_str(&format!(
                        "complete -c tasker -n '__fish_seen_subcommand_from {name}' -l {}\n",
                        &flag[2..]
                    ));
                }
            }
            out
        }
        "powershell" => {
            let mut cases = String::new();
            for (name, flags) in &rows {
                let quoted: Vec<String> = flags.iter().map(|f| format!("'{f}'")).collect();
                cases.push_str(&format!(
                    "        '{name}' {{ $flags = @({}) }}\n",
                    quoted.join(", ")
                ));
            }
            let tasks: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
            let core_q: Vec<String> = core.iter().map(|f| format!("'{f}'")).collect();
            format!(
                "# tasker completions for PowerShell: tasker --completions powershell | Out-String | Invoke-Expression\n\
                 Register-ArgumentCompleter -Native -CommandName tasker -ScriptBlock {{\n    \
                 param($word, $ast, $cursor)\n    \
                 $tasks = @({tasks})\n    \
                 $task = ''\n    \
                 foreach ($e in $ast.CommandElements | Select-Object -Skip 1) {{ if ($tasks -contains \"$e\") {{ $task = \"$e\" }} }}\n    \
                 $flags = @({core})\n    \
                 switch ($task) {{\n{cases}    }}\n    \
                 $pool = if (\"$word\".StartsWith('-')) {{ $flags }} else {{ $tasks }}\n    \
                 $pool | Where-Object {{ $_ -like \"$word*\" }} | ForEach-Object {{\n        \
                 [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)\n    }}\n}}\n",
                tasks = tasks.join(", "),
                core = core_q.join(", "),
            )
        }
        "elvish" => {
            let quote = |list: &[String]| {
                list.iter()
                    .map(|w| format!("'{w}'"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let mut cases = String::new();
            for (name, flags) in &rows {
                cases.push_str(&format!("    &'{name}'=[{}]\n", quote(flags)));
            }
            format!(
                "# tasker completions for elvish: eval (tasker --completions elvish | slurp)\n\
                 use str\n\
                 var tasker-flags = [\n{cases}]\n\
                 set edit:completion:arg-completer[tasker] = {{|@words|\n    \
                 var tasks = [{tasks}]\n    \
                 var task = ''\n    \
                 for w $words[1..-1] {{ if (has-value $tasks $w) {{ set task = $w }} }}\n    \
                 var cur = $words[-1]\n    \
                 if (str:has-prefix $cur -) {{\n        \
                 if (eq $task '') {{ put {core} }} elif (has-key $tasker-flags $task) {{ put $@tasker-flags[$task] }}\n    \
                 }} else {{ put $@tasks }}\n}}\n",
                tasks = quote(&names),
                core = quote(&core),
            )
        }
        other => {
            return Err(
                Error::usage(format!("--completions: unknown shell `{other}`"))
                    .suggest(other, SHELLS)
                    .with_help(format!("the shells are {}", SHELLS.join(", "))),
            )
        }
    })
}
