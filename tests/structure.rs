//! The shape docs/architecture.md promises. Its "Layers" table is read
//! from the page itself: every `crate::module` reference outside
//! `#[cfg(test)]` code and comments is an edge from the top-level module
//! that holds it, and each edge must go to a module of a lower layer. An
//! import cycle fails too, named. And no function in `src/` reaches 100
//! lines but those on `LONG_FUNCTIONS`, each with its reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> (PathBuf, Vec<PathBuf>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    (src, files)
}

/// The identifier at the start of `text`.
fn identifier(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The names `crate::` is followed by in `text`, test modules and
/// comments cut off; `crate::{a, b::c}` names `a` and `b`.
fn references(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + 7..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: after `{` and after each `,`
            // outside nested braces.
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start => {
                        start = false;
                        out.insert(identifier(&group[i..]));
                    }
                    _ => {}
                }
            }
        } else {
            let name = identifier(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// The top-level module a file of `src/` belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let top = rel.components().next().unwrap().as_os_str();
    top.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// Edges between top-level modules (`lib` and `main` left out: the root
/// declares every module), with a file that makes each.
fn import_graph() -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let (src, files) = sources();
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut graph: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        let edges = graph.entry(module.clone()).or_default();
        for name in references(&text) {
            // A name of the crate root (a function of lib.rs) is no module.
            if name != module && modules.contains(&name) {
                let rel = file.strip_prefix(&src).unwrap().to_path_buf();
                edges.entry(name).or_insert(rel);
            }
        }
    }
    graph
}

/// The layers of docs/architecture.md's "Layers" table, top first: each
/// row's modules (the backquoted names of its second column).
fn layers(page: &str) -> Vec<(String, Vec<String>)> {
    let section = page
        .split("\n## Layers\n")
        .nth(1)
        .expect("docs/architecture.md has a \"## Layers\" section");
    let section = section.split("\n## ").next().unwrap();
    let mut rows = Vec::new();
    for line in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (layer, modules) = (cells[1], cells[2]);
        if layer == "layer" || layer.starts_with("---") {
            continue;
        }
        let names = modules
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        rows.push((layer.to_string(), names));
    }
    rows
}

/// Every edge of `graph` that does not go down the `layers`, and every
/// module the table does not place, in words.
fn layer_faults(
    graph: &BTreeMap<String, BTreeMap<String, PathBuf>>,
    layers: &[(String, Vec<String>)],
) -> Vec<String> {
    let mut depth = BTreeMap::new();
    let mut faults = Vec::new();
    for (at, (layer, modules)) in layers.iter().enumerate() {
        for module in modules {
            if let Some((other, _)) = depth.insert(module.clone(), (at, layer.clone())) {
                faults.push(format!(
                    "`{module}` is in two layers (row {other} and {layer})"
                ));
            }
        }
    }
    for module in depth.keys() {
        if !graph.contains_key(module) {
            faults.push(format!(
                "the table names `{module}`, which is no module of src/"
            ));
        }
    }
    for (module, edges) in graph {
        let Some((from, layer)) = depth.get(module) else {
            faults.push(format!("`{module}` is in no layer of the table"));
            continue;
        };
        for (to, file) in edges {
            let Some((below, their)) = depth.get(to) else {
                continue;
            };
            if below <= from {
                faults.push(format!(
                    "src/{} imports `{to}` ({their}), not below `{module}` ({layer})",
                    file.display()
                ));
            }
        }
    }
    faults
}

#[test]
fn modules_import_only_from_the_layers_below() {
    let page_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md");
    let page = std::fs::read_to_string(page_path).unwrap();
    let layers = layers(&page);
    assert!(layers.len() > 5, "the table was read: {layers:?}");
    let graph = import_graph();
    assert!(
        graph.len() > 20,
        "the sources were found: {:?}",
        graph.keys()
    );
    let faults = layer_faults(&graph, &layers);
    assert!(
        faults.is_empty(),
        "the code and the layer table of docs/architecture.md disagree:\n{}",
        faults.join("\n")
    );
}

/// A cycle through `start`, if there is one.
fn cycle_from(
    graph: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    let here = path.last().unwrap().clone();
    for next in graph.get(&here).into_iter().flatten() {
        if next == start {
            let mut cycle = path.clone();
            cycle.push(start.to_string());
            return Some(cycle);
        }
        if !path.contains(next) && graph.contains_key(next) {
            path.push(next.clone());
            if let Some(cycle) = cycle_from(graph, start, path) {
                return Some(cycle);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn modules_import_one_way() {
    let graph: BTreeMap<String, BTreeSet<String>> = import_graph()
        .into_iter()
        .map(|(module, edges)| (module, edges.into_keys().collect()))
        .collect();
    for module in graph.keys() {
        let mut path = vec![module.clone()];
        if let Some(cycle) = cycle_from(&graph, module, &mut path) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_checkers_find_a_cycle_and_an_import_upwards() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    graph.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    let mut path = vec!["a".to_string()];
    assert_eq!(
        cycle_from(&graph, "a", &mut path),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        references(
            "use crate::model::X;\n// crate::stop\nuse crate::{glob::{self, Y}, fresh};\n#[cfg(test)]\nmod tests { use crate::cli; }"
        ),
        BTreeSet::from(["model".to_string(), "glob".into(), "fresh".into()])
    );

    let page = "# Page\n## Layers\n\n| layer | modules | what |\n|---|---|---|\n| top | `a` | x |\n| low | `b`, `c` | y |\n\n## Next\n| n | `z` | |\n";
    let layers = layers(page);
    assert_eq!(
        layers,
        vec![
            ("top".to_string(), vec!["a".to_string()]),
            ("low".to_string(), vec!["b".to_string(), "c".to_string()]),
        ]
    );
    let edge = |to: &str, file: &str| (to.to_string(), PathBuf::from(file));
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeMap::from([edge("b", "a.rs")]));
    graph.insert("b".to_string(), BTreeMap::from([edge("c", "b/mod.rs")]));
    graph.insert("c".to_string(), BTreeMap::from([edge("a", "c.rs")]));
    graph.insert("d".to_string(), BTreeMap::new());
    assert_eq!(
        layer_faults(&graph, &layers),
        vec![
            "src/b/mod.rs imports `c` (low), not below `b` (low)".to_string(),
            "src/c.rs imports `a` (top), not below `c` (low)".to_string(),
            "`d` is in no layer of the table".to_string(),
        ]
    );
}

/// Functions of 100 lines or more that may stay so for now, each with its
/// reason: (file under src/, function name, why).
const LONG_FUNCTIONS: &[(&str, &str, &str)] = &[];

/// The code of `text` with comments, strings and character literals
/// blanked (newlines kept), so that braces count as the compiler sees them.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) && {
            // A raw string: r"..." or r#"..."#, not an identifier ending in r.
            let before = i.checked_sub(1).map(|j| chars[j]);
            !before.is_some_and(|b| b.is_alphanumeric() || b == '_')
                && chars[i + 1..]
                    .iter()
                    .find(|&&h| h != '#')
                    .is_some_and(|&q| q == '"')
        } {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let body_start = i + 2 + hashes;
            let rest: String = chars[body_start..].iter().collect();
            let end = rest.find(&close).map_or(chars.len(), |at| {
                body_start + rest[..at].chars().count() + close.chars().count()
            });
            out.extend(chars[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal ('x', '\n', '\u{7f}'); a lifetime has no
            // closing quote.
            let end = chars[i + 1..]
                .iter()
                .skip(1)
                .position(|&q| q == '\'')
                .map_or(chars.len(), |at| i + 3 + at);
            out.extend(chars[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Every function with a body in `text`: its name, first line (1-based)
/// and length in lines, from `fn` to its closing brace.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let code = code_only(text);
    let bytes = code.as_bytes();
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut search = 0;
    while let Some(found) = code[search..].find("fn ") {
        let at = search + found;
        search = at + 3;
        let word_start =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        if !word_start {
            continue;
        }
        let name = identifier(&code[at + 3..]);
        if name.is_empty() {
            continue;
        }
        // The body opens at the first `{` outside parentheses; a `;` first
        // is a declaration without one.
        let mut parens = 0i32;
        let mut open = None;
        for (i, b) in bytes.iter().enumerate().skip(at + 3) {
            match b {
                b'(' | b'[' => parens += 1,
                b')' | b']' => parens -= 1,
                b';' if parens == 0 => break,
                b'{' if parens == 0 => {
                    open = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let Some(open) = open else {
            continue;
        };
        let mut depth = 0;
        let mut close = bytes.len() - 1;
        for (i, b) in bytes.iter().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let first = line_of(at);
        out.push((name, first, line_of(close) - first + 1));
    }
    out
}

#[test]
fn no_function_reaches_100_lines_but_the_listed_ones() {
    let (src, files) = sources();
    let mut long = Vec::new();
    let mut seen = BTreeSet::new();
    for file in &files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(file).unwrap();
        for (name, line, lines) in functions(&text) {
            if lines < 100 {
                continue;
            }
            if LONG_FUNCTIONS
                .iter()
                .any(|(f, n, _)| *f == rel && *n == name)
            {
                seen.insert((rel.clone(), name));
                continue;
            }
            long.push(format!("src/{rel}:{line}: `{name}` is {lines} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "functions of 100 lines or more (split them, or list one in LONG_FUNCTIONS with its reason):\n{}",
        long.join("\n")
    );
    for (file, name, _) in LONG_FUNCTIONS {
        assert!(
            seen.contains(&(file.to_string(), name.to_string())),
            "src/{file}: `{name}` is under 100 lines now (or gone): take it off LONG_FUNCTIONS"
        );
    }
}

#[test]
fn functions_are_measured_from_fn_to_the_closing_brace() {
    let text = "fn a() {\n    let s = \"}\";\n    let c = '{';\n    // }\n}\n\ntrait T {\n    fn b(&self);\n    fn c<'x>(&self, x: &'x [u8; 2]) -> Vec<u8> where u8: Copy {\n        let r = r#\"}\"#;\n        vec![]\n    }\n}\n";
    assert_eq!(
        functions(text),
        vec![("a".to_string(), 1, 5), ("c".to_string(), 9, 4)]
    );
}
