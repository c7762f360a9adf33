//! justfiles.
use super::doc::*;
pub(crate) fn parse(_source: &str, file: &str) -> Doc {
    Doc {
        source: file.to_string(),
        ..Doc::default()
    }
}
