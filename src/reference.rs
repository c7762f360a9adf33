//! The key tables of docs/reference.md, read at build time, so that the
//! man page and the JSON Schema describe the keys in the reference's own
//! words.

const REFERENCE: &str = include_str!("../docs/reference.md");

/// The cells of each row of the table under `### heading`.
pub(crate) fn table(heading: &str) -> Vec<Vec<String>> {
    let Some(start) = REFERENCE.find(&format!("\n### {heading}\n")) else {
        return Vec::new();
    };
    REFERENCE[start + 1..]
        .lines()
        .skip(1)
        .take_while(|line| !line.starts_with('#'))
        .filter(|line| line.starts_with('|'))
        .skip(2)
        .map(|line| {
            line.trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().to_string())
                .collect()
        })
        .collect()
}

pub(crate) fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Markdown's marks taken out: the page has its own fonts.
pub(crate) fn plain(cell: &str) -> String {
    cell.replace("**", "").replace('`', "")
}
