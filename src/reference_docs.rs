//! Keeps docs/reference.md true to the loader: every key the loader
//! accepts has a row in the reference's key tables (and no row names a key
//! it refuses), each row says type, default and example, and the page reads
//! as a user's reference. A test module only.

use crate::file::load::{
    ARG_KEYS, REMOTE_CACHE_KEYS, SETTINGS_KEYS, STEP_KEYS, TASK_KEYS, TOP_KEYS,
};

const REFERENCE: &str = include_str!("../docs/reference.md");

/// The rows of the table under `### HEADING`: the cells of each row.
fn table(heading: &str) -> Vec<Vec<String>> {
    let start = REFERENCE
        .find(&format!("\n### {heading}\n"))
        .unwrap_or_else(|| panic!("docs/reference.md has no `### {heading}`"));
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in REFERENCE[start + 1..].lines().skip(1) {
        if line.starts_with('#') {
            break;
        }
        if line.starts_with('|') {
            in_table = true;
            let cells: Vec<String> = line
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect();
            rows.push(cells);
        } else if in_table {
            break;
        }
    }
    // Past the header and the `|---|` line.
    rows.into_iter().skip(2).collect()
}

fn keys(rows: &[Vec<String>]) -> Vec<String> {
    let mut keys: Vec<String> = rows
        .iter()
        .map(|row| row[0].trim_matches('`').to_string())
        .collect();
    keys.sort();
    keys
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    keys.sort();
    keys
}

#[test]
fn every_key_the_loader_accepts_has_a_row_in_the_reference() {
    for (heading, accepted) in [
        ("Top-level tables", TOP_KEYS),
        ("Settings keys", SETTINGS_KEYS),
        ("Remote cache keys", REMOTE_CACHE_KEYS),
        ("Task keys", TASK_KEYS),
        ("Argument keys", ARG_KEYS),
        ("Step keys", STEP_KEYS),
    ] {
        let rows = table(heading);
        assert_eq!(
            keys(&rows),
            sorted(accepted),
            "the `{heading}` table of docs/reference.md and the loader disagree"
        );
        for row in &rows {
            assert_eq!(row.len(), 5, "{heading}: a row needs 5 cells: {row:?}");
            assert!(
                row.iter().all(|cell| !cell.is_empty()),
                "{heading}: a row has an empty cell: {row:?}"
            );
        }
    }
}

#[test]
fn the_reference_is_written_for_users() {
    for word in ["SPEC", "contract", "Choice"] {
        assert!(
            !REFERENCE.contains(word),
            "docs/reference.md speaks of `{word}`"
        );
    }
    assert!(REFERENCE.contains("An argument without a `default` is required"));
    let numbers: Vec<usize> = REFERENCE
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|title| {
            title
                .split('.')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("section `{title}` has no number"))
        })
        .collect();
    let expected: Vec<usize> = (1..=numbers.len()).collect();
    assert_eq!(numbers, expected, "sections are numbered without gaps");
}

#[test]
fn the_reference_names_the_presentation_only_keys() {
    use crate::file::load::definition::PRESENTATION_KEYS;
    let line = REFERENCE
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Presentation-only keys, left out of the fingerprint: ")
        })
        .expect("docs/reference.md lists the presentation-only keys");
    let listed: Vec<&str> = line
        .trim_end_matches('.')
        .split(", ")
        .map(|k| k.trim_matches('`'))
        .collect();
    assert_eq!(listed, PRESENTATION_KEYS);
}
