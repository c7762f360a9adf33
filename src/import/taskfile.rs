//! Taskfiles.
use super::doc::*;
use crate::error::Result;
pub(crate) fn parse(
    _source: &str,
    file: &str,
    _path: &std::path::Path,
    _cwd: &std::path::Path,
) -> Result<Doc> {
    Ok(Doc {
        source: file.to_string(),
        ..Doc::default()
    })
}
