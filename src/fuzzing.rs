//! Entry points for the fuzz targets in `fuzz/` and for the test that
//! replays their saved crash inputs (`tests/fuzz_regressions.rs`): each
//! takes the raw bytes a fuzzer made and drives one stage the way tasker
//! does. Not part of tasker's interface.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use minijinja::Value;

use crate::args::{self, Source};
use crate::error::{Error, SourceFile, Span};
use crate::model::{Model, Template};
use crate::style::Style;
use crate::template::{Engine, Mode};

/// The loader: file text to model or error, then what `--check` and `-l`
/// do with the model. An error is rendered as tasker would print it.
pub fn loader(data: &[u8]) -> Result<(), Error> {
    let text = String::from_utf8_lossy(data);
    let model = load(&text).inspect_err(render_error)?;
    crate::check::check_file(&Engine::new(), &model).inspect_err(render_error)?;
    list(&model);
    Ok(())
}

/// The argument parser: `tasks.toml` text, then a NUL, then the words
/// after tasker's options separated by NULs (a word on a command line
/// cannot hold one). Words are read both as a command line and as a call.
pub fn args(data: &[u8]) {
    let mut parts = data.split(|&b| b == 0);
    let text = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let Ok(model) = load(&text) else {
        return;
    };
    let words: Vec<String> = parts
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    let command_line = Source::CommandLine {
        own_option: crate::cli::own_option,
    };
    for source in [command_line, Source::Call] {
        match args::parse(&model, &words, source) {
            Ok(invocations) => {
                for inv in invocations {
                    let task = &model.tasks[inv.task];
                    if inv.help {
                        // Both shapes of the usage line.
                        for reads_extra in [false, true] {
                            crate::list::task_help(task, reads_extra, Style { color: false });
                        }
                    }
                    for value in &inv.values {
                        let _ = (value.to_value(), value.to_json(), value.display());
                    }
                }
            }
            Err(e) => render_error(&e),
        }
    }
}

/// Rendering: a template, then a NUL, then values separated by NULs. Each
/// name the template reads gets the next value in turn. A value is text,
/// or `[a,b]` a list, `#12` a number, `?` true, `!` false, `~` none.
pub fn render(data: &[u8]) {
    let mut parts = data.split(|&b| b == 0);
    let source = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let mut values: Vec<Value> = parts
        .map(|p| value_of(&String::from_utf8_lossy(p)))
        .collect();
    if values.is_empty() {
        values = vec![
            Value::from("two words"),
            Value::from(vec!["a", "b c"]),
            Value::from(3),
            Value::from(true),
            Value::from(()),
        ];
    }
    // The template as a TOML string in a file, as the loader leaves it, so
    // that error spans land inside the string.
    let quote = if source.contains("'''") {
        "\"\"\""
    } else {
        "'''"
    };
    let text = format!("run = {quote}{source}{quote}\n");
    let file = Arc::new(SourceFile {
        display: "tasks.toml".to_string(),
        path: "tasks.toml".into(),
        text,
    });
    let template = Template {
        span: Span::new(&file, 6..file.text.len() - 1),
        source,
    };
    let engine = Engine::new();
    let _ = engine.unknown_filter_or_test(&template);
    let names = match engine.names(&template, "the template") {
        Ok(names) => names,
        Err(e) => return render_error(&e),
    };
    let mut names: Vec<String> = names
        .iter()
        .map(|n| n.split('.').next().unwrap_or(n).to_string())
        .collect();
    names.sort();
    names.dedup();
    let context: BTreeMap<String, Value> = names
        .into_iter()
        .zip(values.iter().cycle().cloned())
        .collect();
    // The modes differ only in how values are written out: a render that
    // fails in one fails in all.
    for mode in [Mode::Shell, Mode::Plain] {
        if let Err(e) = engine.render(&template, mode, &context, "the template") {
            return render_error(&e);
        }
    }
    if let Err(e) = engine.render_words(&template, &context, "the template") {
        render_error(&e);
    }
    if let Err(e) = engine.render_words(&template, &context, "the template") {
        render_error(&e);
    }
}

fn value_of(text: &str) -> Value {
    if let Some(items) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return Value::from(items.split(',').map(str::to_string).collect::<Vec<_>>());
    }
    if let Some(n) = text.strip_prefix('#') {
        if let Ok(n) = n.parse::<i64>() {
            return Value::from(n);
        }
        if let Ok(x) = n.parse::<f64>() {
            return Value::from(x);
        }
    }
    match text {
        "?" => Value::from(true),
        "!" => Value::from(false),
        "~" => Value::from(()),
        _ => Value::from(text),
    }
}

fn load(text: &str) -> Result<Model, Error> {
    crate::file::load_str(text, "tasks.toml", Path::new("/nonexistent/fuzz"))
}

fn list(model: &Model) {
    crate::list::render(model, true, Style { color: false });
    crate::list::render(model, false, Style { color: true });
    crate::list::render_json(model, true, &|_| crate::list::Freshness::default());
}

fn render_error(e: &Error) {
    e.render(false);
    e.render(true);
}
