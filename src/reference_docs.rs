//! Keeps docs/reference.md true to the loader: the tables of task keys and
//! argument keys are the ones their declarations (`file::load::keys`)
//! generate, every other key the loader accepts has a row in the
//! reference's key tables (and no row names a key it refuses), each row
//! says type, default and example, and the page reads as a user's
//! reference. A test module only.

use crate::file::load::keys::{names, reference_table, Key};
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

/// The text of the table under `### heading`, from its header to its
/// last row, and where it starts in `page`.
fn table_text<'p>(page: &'p str, heading: &str) -> (usize, &'p str) {
    let start = page
        .find(&format!("\n### {heading}\n"))
        .unwrap_or_else(|| panic!("docs/reference.md has no `### {heading}`"));
    let from = start + page[start..].find("\n|").expect("a table") + 1;
    let len = page[from..]
        .find("\n\n")
        .map_or(page.len() - from, |end| end + 1);
    (from, &page[from..from + len])
}

/// The tables of task keys and argument keys are generated from their
/// declarations. `TASKER_WRITE_REFERENCE=1 cargo test --lib reference`
/// writes them into docs/reference.md after a key is added or changed.
#[test]
fn the_key_tables_are_the_declarations() {
    fn check<D>(page: &mut String, heading: &str, keys: &'static [Key<D>]) -> bool {
        let wanted = reference_table(keys);
        let (at, found) = table_text(page, heading);
        if found == wanted {
            return true;
        }
        let len = found.len();
        page.replace_range(at..at + len, &wanted);
        false
    }
    let mut page = REFERENCE.to_string();
    let same =
        check(&mut page, "Task keys", TASK_KEYS) & check(&mut page, "Argument keys", ARG_KEYS);
    if !same && std::env::var_os("TASKER_WRITE_REFERENCE").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference.md");
        std::fs::write(path, &page).unwrap();
    }
    assert!(
        same,
        "docs/reference.md's tables of task keys or argument keys differ from their declarations \
         (src/file/load/task.rs, args.rs); TASKER_WRITE_REFERENCE=1 cargo test --lib reference writes them"
    );
}

#[test]
fn every_key_the_loader_accepts_has_a_row_in_the_reference() {
    let task_keys: Vec<&str> = names(TASK_KEYS).collect();
    let arg_keys: Vec<&str> = names(ARG_KEYS).collect();
    for (heading, accepted) in [
        ("Top-level tables", TOP_KEYS),
        ("Settings keys", SETTINGS_KEYS),
        ("Remote cache keys", REMOTE_CACHE_KEYS),
        ("Task keys", &task_keys),
        ("Argument keys", &arg_keys),
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
    use crate::file::load::definition::presentation_keys;
    let line = REFERENCE
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Presentation-only keys, left out of the fingerprint: ")
        })
        .expect("docs/reference.md lists the presentation-only keys");
    let mut listed: Vec<&str> = line
        .trim_end_matches('.')
        .split(", ")
        .map(|k| k.trim_matches('`'))
        .collect();
    listed.sort_unstable();
    let mut declared = presentation_keys(TASK_KEYS);
    declared.sort_unstable();
    assert_eq!(listed, declared);
}
