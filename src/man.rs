//! `tasker --man`: the manual page, in roff. The options come from the one
//! declaration in `cli.rs` (through `clap_mangen`); the summary of the file
//! format is read from the key tables of docs/reference.md, so the page
//! says what the reference says.

use clap::CommandFactory;
use roff::{bold, roman, Roff};

use crate::cli::Cli;
use crate::reference::{capitalised, plain, table};

/// The key tables of the reference, in the order the page shows them.
const TABLES: [(&str, &str); 6] = [
    ("Top-level tables", "Its top level holds these tables:"),
    ("Settings keys", "[settings]:"),
    (
        "Remote cache keys",
        "settings.remote_cache, where the environment may fill in or override either:",
    ),
    ("Task keys", "[tasks.NAME], every key optional:"),
    ("Argument keys", "[[tasks.NAME.args]], one argument each:"),
    (
        "Step keys",
        "A step in run or finally is a string (a shell script) or a table with exactly one of sh, cmd, pipe or task:",
    ),
];

pub fn render() -> String {
    let man = clap_mangen::Man::new(Cli::command()).manual("tasker manual");
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = man.render(&mut out);
    let page = String::from_utf8_lossy(&out).into_owned();
    // tasker's own sections go after the options, before the closing
    // notes (the after-help text and the version).
    let at = page
        .find("\n.SH EXTRA")
        .or_else(|| page.find("\n.SH VERSION"))
        .map_or(page.len(), |at| at + 1);
    format!(
        "{}{}{}{}",
        &page[..at],
        file_section(),
        environment_section(),
        &page[at..]
    )
}

/// `THE FILE`: how the file is found, then every key with its type,
/// default and meaning.
fn file_section() -> String {
    let mut roff = Roff::new();
    roff.control("SH", ["THE FILE"]);
    roff.text([roman(
        "tasker reads tasks.toml, found in the current directory or the nearest parent (or the file -f names); the directory holding it is the root. tasker --init writes a starter file, tasker --schema prints its JSON Schema, and tasker --check validates it. The sections named below are those of docs/reference.md.",
    )]);
    for (heading, intro) in TABLES {
        roff.control("SS", [heading.to_uppercase().as_str()]);
        roff.text([roman(intro)]);
        for row in table(heading) {
            let [key, ty, default, _example, meaning] = &row[..] else {
                continue;
            };
            roff.control("TP", []);
            roff.text([bold(plain(key))]);
            roff.text([roman(format!(
                "{} (default: {}). {}",
                plain(ty),
                plain(default),
                capitalised(&plain(meaning))
            ))]);
        }
    }
    roff.to_roff()
}

fn environment_section() -> String {
    let mut roff = Roff::new();
    roff.control("SH", ["ENVIRONMENT"]);
    for (name, meaning) in [
        (
            "NO_COLOR",
            "set and not empty: no colours (under --color auto)",
        ),
        (
            "CLICOLOR_FORCE",
            "set, not empty and not 0: colours even into a pipe (under --color auto)",
        ),
        ("CLICOLOR", "0: no colours (under --color auto)"),
        (
            "TASKER_REMOTE_CACHE_URL",
            "the remote cache server's URL, over settings.remote_cache.url",
        ),
        (
            "TASKER_REMOTE_CACHE_TEAM",
            "the remote cache team, over settings.remote_cache.team",
        ),
        (
            "TASKER_REMOTE_CACHE_TOKEN",
            "the remote cache's bearer token (never read from the file)",
        ),
        (
            "TASKER_REMOTE_CACHE_SIGNATURE_KEY",
            "set: artifacts are signed with HMAC-SHA256 and checked before they are restored",
        ),
        (
            "TERM",
            "unset or dumb: no colours and no live status line (under --color auto)",
        ),
    ] {
        roff.control("TP", []);
        roff.text([bold(name)]);
        roff.text([roman(meaning)]);
    }
    roff.to_roff()
}

#[cfg(test)]
mod tests {
    use super::TABLES;
    use crate::reference::table;

    #[test]
    fn every_table_the_page_reads_is_in_the_reference() {
        for (heading, _) in TABLES {
            let rows = table(heading);
            assert!(!rows.is_empty(), "{heading}");
            assert!(rows.iter().all(|r| r.len() == 5), "{heading}: {rows:?}");
        }
    }
}
