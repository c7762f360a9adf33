//! Makefiles.
use super::doc::*;
pub(crate) fn parse(_source: &str, file: &str, _path: &std::path::Path) -> Doc {
    Doc {
        source: file.to_string(),
        ..Doc::default()
    }
}
