//! Warnings that `--check` gives about files that load and run, but not as
//! their author meant: a value written inside quotes in a shell command
//! (`echo "hello {{ name }}"`), where tasker's own quoting of the value
//! shows up in the output (`hello 'big world'`).

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};

use crate::model::{Model, StepKind, Template};
use crate::quotes::ShellQuotes;

/// One warning, pointing at the value in the file.
pub struct Warning {
    template: Template,
    /// The `{{ ... }}` as written in the template.
    value: String,
    task: String,
    /// In a task call, where quotes group words (not a shell command).
    in_call: bool,
}

/// Every `{{ value }}` inside quotes in text that is split like a shell
/// command line: shell scripts, `pipe` stages and task calls.
pub fn quoted_values(model: &Model) -> Vec<Warning> {
    let mut warnings = Vec::new();
    for task in &model.tasks {
        let mut templates: Vec<(&Template, bool)> = Vec::new();
        for step in task.run.iter().chain(&task.finally) {
            match &step.kind {
                StepKind::Sh(t) => templates.push((t, false)),
                StepKind::Pipe(stages) => templates.extend(stages.iter().map(|t| (t, false))),
                StepKind::Task(call) => templates.push((&call.template, true)),
                StepKind::Cmd(_) => {}
            }
        }
        templates.extend(
            task.deps
                .iter()
                .chain(&task.post)
                .map(|c| (&c.template, true)),
        );
        for (template, in_call) in templates {
            for value in values_in_quotes(&template.source) {
                warnings.push(Warning {
                    template: template.clone(),
                    value,
                    task: task.name.clone(),
                    in_call,
                });
            }
        }
    }
    warnings
}

/// The `{{ ... }}` expressions of `source` that stand inside shell quotes
/// (and do not opt out with `| safe`).
fn values_in_quotes(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut quotes = ShellQuotes::default();
    let mut i = 0;
    while i < source.len() {
        let rest = &source[i..];
        // Template tags are skipped whole: their own quotes are Jinja's.
        if let Some(close) = ["{{", "{%", "{#"]
            .iter()
            .find(|open| rest.starts_with(**open))
            .map(|open| match *open {
                "{{" => "}}",
                "{%" => "%}",
                _ => "#}",
            })
        {
            let end = rest.find(close).map_or(rest.len(), |at| at + close.len());
            let tag = &rest[..end];
            if tag.starts_with("{{") && quotes.inside() && !is_safe(tag) {
                found.push(tag.to_string());
            }
            i += end;
            quotes.skipped();
            continue;
        }
        let c = rest.chars().next().unwrap_or(' ');
        quotes.step(c);
        i += c.len_utf8();
    }
    found
}

fn is_safe(tag: &str) -> bool {
    let inner: String = tag.chars().filter(|c| !c.is_whitespace()).collect();
    inner.contains("|safe")
}

impl Warning {
    /// The warning in rustc's shape, the value marked when the file holds
    /// the template verbatim.
    pub fn render(&self, color: bool) -> String {
        let span = &self.template.span;
        let file = &span.file;
        let token = file.text.get(span.range.clone()).unwrap_or("");
        let range = match token.find(self.value.as_str()) {
            Some(at) => span.range.start + at..span.range.start + at + self.value.len(),
            None => span.range.clone(),
        };
        let title = if self.in_call {
            format!(
                "a value inside quotes in a task call of task `{}`",
                self.task
            )
        } else {
            format!("a value inside quotes in a command of task `{}`", self.task)
        };
        let group = Level::WARNING.primary_title(title.as_str()).element(
            Snippet::source(file.text.as_str())
                .path(file.display.as_str())
                .fold(true)
                .annotation(
                    AnnotationKind::Primary
                        .span(range)
                        .label("quoted by tasker already"),
                ),
        );
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        let mut out = renderer.render(&[group]);
        out.push('\n');
        out.push_str(if color {
            "\x1b[1;36mhelp\x1b[0m: "
        } else {
            "help: "
        });
        let help = if self.in_call {
            // In a call, quotes group fixed words into one argument; the
            // value is one word already, and joins them when written
            // right after the closing quote.
            format!(
                "tasker quotes every value, so its quotes end these and the value splits (`big world` becomes two words); quotes in a call group fixed words, and a value written right after them joins that word: `'fixed words '{}`",
                self.value
            )
        } else {
            format!(
                "tasker quotes every value for the shell, so these quotes would show in the output (`hello 'big world'`); write `{}` outside the quotes",
                self.value
            )
        };
        out.push_str(&help);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::values_in_quotes;

    #[test]
    fn values_inside_quotes_are_found() {
        assert_eq!(
            values_in_quotes(r#"echo "hello {{ name }}""#),
            ["{{ name }}"]
        );
        assert_eq!(values_in_quotes("echo '{{ a }}' {{ b }}"), ["{{ a }}"]);
        assert_eq!(
            values_in_quotes(
                r#"echo \"{{ a }} "x{% if b == 'c' %}y{% endif %}" {{ d | join(',') }}"#
            ),
            Vec::<String>::new()
        );
        assert!(values_in_quotes(r#"echo "{{ raw | safe }}""#).is_empty());
        assert!(values_in_quotes("echo hello {{ name }}").is_empty());
    }
}
