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
