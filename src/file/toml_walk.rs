//! Typed access to the spanned TOML tree, with errors that point at the
//! offending value and suggest the nearest valid key.

use std::ops::Range;
use std::sync::Arc;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::error::{Error, Result, SourceFile, Span};
use crate::model::Template;

pub type Value<'i> = Spanned<DeValue<'i>>;

pub struct Walker {
    pub file: Arc<SourceFile>,
    /// Set when the document walked is a part of the file (the load
    /// index): its offsets are mapped back to the file's.
    pub part: Option<Arc<super::index::Part>>,
}

/// Our keys for a key that other task runners (just, go-task, make-likes,
/// npm scripts) use, so that a file written from habit gets a pointer; the
/// first that the table takes is the one meant (`script` is `run` in a
/// task, `sh` in a step).
fn foreign_key(name: &str) -> &'static [&'static str] {
    match name {
        "description" | "desc" => &["help"],
        "cmd" | "cmds" | "command" | "commands" | "script" => &["run", "sh"],
        "depends" | "depends_on" | "needs" | "dependencies" => &["deps"],
        _ => &[],
    }
}

pub fn type_name(value: &DeValue) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

impl Walker {
    pub fn span(&self, range: Range<usize>) -> Span {
        match &self.part {
            Some(part) => Span::new(&self.file, part.original(range)),
            None => Span::new(&self.file, range),
        }
    }

    pub fn error(&self, range: Range<usize>, message: impl Into<String>) -> Error {
        Error::at(&self.span(range), message)
    }

    /// "`key` must be EXPECTED, found ..." pointing at the value.
    pub fn wrong_type(
        &self,
        value: &Value,
        what: impl std::fmt::Display + Copy,
        expected: &str,
    ) -> Error {
        self.error(
            value.span(),
            format!(
                "{what} must be {expected}, found {}",
                type_name(value.get_ref())
            ),
        )
        .with_label(format!("expected {expected}"))
    }

    pub fn table<'a, 'i>(
        &self,
        value: &'a Value<'i>,
        what: impl std::fmt::Display + Copy,
    ) -> Result<&'a DeTable<'i>> {
        match value.get_ref() {
            DeValue::Table(t) => Ok(t),
            _ => Err(self.wrong_type(value, what, "a table")),
        }
    }

    /// Every key of `table` must be in `allowed` (a list of names, or a
    /// key declaration's names).
    pub fn check_keys<K: AsRef<str>>(
        &self,
        table: &DeTable,
        allowed: impl IntoIterator<Item = K> + Clone,
        place: impl std::fmt::Display,
    ) -> Result<()> {
        for key in table.keys() {
            let name = key.get_ref().as_ref();
            if !allowed.clone().into_iter().any(|a| a.as_ref() == name) {
                let allowed: Vec<K> = allowed.into_iter().collect();
                let allowed: Vec<&str> = allowed.iter().map(AsRef::as_ref).collect();
                let err = self
                    .error(key.span(), format!("unknown key `{name}` in {place}"))
                    .with_label("unknown key");
                let ours = foreign_key(name).iter().find(|ours| allowed.contains(ours));
                let err = match ours {
                    Some(ours) => err.with_help(format!(
                        "`{name}` is what other task runners call it; tasker's key is `{ours}`"
                    )),
                    None => err.suggest(name, allowed.iter().copied()),
                };
                return Err(err.with_help(format!("valid keys: {}", allowed.join(", "))));
            }
        }
        Ok(())
    }

    pub fn string(&self, value: &Value, what: impl std::fmt::Display + Copy) -> Result<String> {
        match value.get_ref() {
            DeValue::String(s) => Ok(s.to_string()),
            _ => Err(self.wrong_type(value, what, "a string")),
        }
    }

    pub fn template(&self, value: &Value, what: impl std::fmt::Display + Copy) -> Result<Template> {
        Ok(Template {
            source: self.string(value, what)?,
            span: self.span(value.span()),
        })
    }

    pub fn bool(&self, value: &Value, what: impl std::fmt::Display + Copy) -> Result<bool> {
        match value.get_ref() {
            DeValue::Boolean(b) => Ok(*b),
            _ => Err(self.wrong_type(value, what, "true or false")),
        }
    }

    pub fn int(&self, value: &Value, what: impl std::fmt::Display + Copy) -> Result<i64> {
        match value.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
                .map_err(|_| {
                    self.error(value.span(), format!("{what} is out of range"))
                        .with_label("too large")
                }),
            _ => Err(self.wrong_type(value, what, "an integer")),
        }
    }

    pub fn float(&self, value: &Value, what: impl std::fmt::Display + Copy) -> Result<f64> {
        match value.get_ref() {
            DeValue::Float(f) => {
                let text = f.as_str().replace('_', "");
                let parsed = match text.as_str() {
                    "inf" | "+inf" => Some(f64::INFINITY),
                    "-inf" => Some(f64::NEG_INFINITY),
                    "nan" | "+nan" | "-nan" => Some(f64::NAN),
                    other => other.parse().ok(),
                };
                parsed.ok_or_else(|| self.error(value.span(), format!("{what} is not a number")))
            }
            DeValue::Integer(_) => self.int(value, what).map(|i| i as f64),
            _ => Err(self.wrong_type(value, what, "a number")),
        }
    }

    pub fn array<'a, 'i>(
        &self,
        value: &'a Value<'i>,
        what: impl std::fmt::Display + Copy,
    ) -> Result<&'a [Value<'i>]> {
        match value.get_ref() {
            DeValue::Array(a) => Ok(&a[..]),
            _ => Err(self.wrong_type(value, what, "an array")),
        }
    }

    /// An array of strings, each with its span.
    pub fn strings(
        &self,
        value: &Value,
        what: impl std::fmt::Display + Copy,
    ) -> Result<Vec<(String, Span)>> {
        self.array(value, what)?
            .iter()
            .map(|item| {
                Ok((
                    self.string(item, format_args!("each entry of {what}"))?,
                    self.span(item.span()),
                ))
            })
            .collect()
    }

    /// A string, or an array of strings.
    pub fn string_or_strings(
        &self,
        value: &Value,
        what: impl std::fmt::Display + Copy,
    ) -> Result<Vec<(String, Span)>> {
        match value.get_ref() {
            DeValue::String(s) => Ok(vec![(s.to_string(), self.span(value.span()))]),
            DeValue::Array(_) => self.strings(value, what),
            _ => Err(self.wrong_type(value, what, "a string or an array of strings")),
        }
    }

    pub fn duration(
        &self,
        value: &Value,
        what: impl std::fmt::Display + Copy,
    ) -> Result<std::time::Duration> {
        let text = self.string(value, what)?;
        match parse_duration(&text) {
            Ok(duration) => Ok(duration),
            Err(DurationError::TooLarge) => Err(self
                .error(value.span(), format!("{what} is too large: `{text}`"))
                .with_label("too large")
                .with_help("a duration must fit after the current time; write a smaller one")),
            Err(DurationError::Invalid) => Err(self
                .error(value.span(), format!("{what} is not a duration: `{text}`"))
                .with_label("expected a duration")
                .with_help(
                    "write a number and a unit: \"500ms\", \"30s\", \"5m\", \"1h\", \"1m30s\"",
                )),
        }
    }
}

/// Why a text is not a usable duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurationError {
    Invalid,
    /// Valid, but too large to add to the current time (SPEC 6, Limits):
    /// a deadline computed from it would overflow.
    TooLarge,
}

/// "500ms", "30s", "5m", "1h", "1m30s". A bare number is seconds.
pub fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Invalid);
    }
    let seconds = match text.parse::<f64>() {
        Ok(secs) if secs >= 0.0 && !secs.is_nan() => secs,
        Ok(_) => return Err(DurationError::Invalid),
        Err(_) => units(text).ok_or(DurationError::Invalid)?,
    };
    let duration =
        std::time::Duration::try_from_secs_f64(seconds).map_err(|_| DurationError::TooLarge)?;
    // Deadlines are the current time plus a duration: one that cannot be
    // added is refused here rather than overflowing at run time. Twice the
    // duration must fit, so that a deadline taken later still does.
    let fits = duration
        .checked_mul(2)
        .and_then(|twice| std::time::Instant::now().checked_add(twice))
        .is_some();
    if !fits {
        return Err(DurationError::TooLarge);
    }
    Ok(duration)
}

/// Seconds in "1m30s", "250ms" and the like.
fn units(text: &str) -> Option<f64> {
    let mut total = 0.0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * factor;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, DurationError};
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("soon"), Err(DurationError::Invalid));
        assert_eq!(parse_duration("5x"), Err(DurationError::Invalid));
        assert_eq!(parse_duration(""), Err(DurationError::Invalid));
        assert_eq!(parse_duration("-1"), Err(DurationError::Invalid));
        assert_eq!(parse_duration("nan"), Err(DurationError::Invalid));
        assert_eq!(parse_duration("1e20"), Err(DurationError::TooLarge));
        assert_eq!(parse_duration("inf"), Err(DurationError::TooLarge));
        assert_eq!(
            parse_duration("99999999999999999999999h"),
            Err(DurationError::TooLarge)
        );
    }
}
