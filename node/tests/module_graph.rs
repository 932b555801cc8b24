//! The architecture, checked (STYLE.md habit 11): node/'s modules import
//! each other without a circle, and the pure crates (genesis, quorum,
//! replica) depend on no async runtime, RPC stack, consensus engine or
//! database.
//!
//! The module graph is read from the source: an edge runs from the module
//! a file defines to every node/ module a `crate::…` or `super::…` path in
//! it names (a `use crate::{a, b::c}` group names each). A path names the
//! longest module prefix it has. Unit-test modules at the end of a file
//! (`#[cfg(test)] mod …`) are left out: they are not part of the build.
//! A parent re-exporting a child (`pub use child::X`) is an edge too, so a
//! child must not import its parent; shared items go into a leaf module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One `crate::`/`super::` reference: the module it names, and where.
#[derive(Debug, Clone)]
struct Edge {
    to: String,
    file: PathBuf,
    line: usize,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("node/ has a parent")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path a file under `src` defines ("" for the crate root).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("file under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem.to_string());
    }
    parts.join("::")
}

/// The code of a file without comments and without a trailing unit-test
/// module.
fn code_of(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]")
            && lines
                .get(i + 1)
                .is_some_and(|n| n.trim_start().starts_with("mod "))
        {
            break;
        }
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        out.push((i + 1, code.to_string()));
    }
    out
}

/// Splits a `{…}` group body at top-level commas.
fn split_group(body: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for ch in body.chars() {
        match ch {
            '{' => {
                depth += 1;
                cur.push(ch);
            }
            '}' => {
                depth -= 1;
                cur.push(ch);
            }
            ',' if depth == 0 => items.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    items.push(cur);
    items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Expands `a::{b, c::{d}}` into `a::b`, `a::c::d`.
fn expand(path: &str, out: &mut Vec<String>) {
    match path.find('{') {
        None => {
            let p = path.split(" as ").next().unwrap_or(path).trim();
            out.push(p.trim_end_matches("::self").to_string());
        }
        Some(open) => {
            let prefix = path[..open].trim_end_matches("::");
            let close = path.rfind('}').unwrap_or(path.len());
            for item in split_group(&path[open + 1..close]) {
                if item == "self" || item == "*" {
                    out.push(prefix.to_string());
                } else {
                    expand(&format!("{prefix}::{item}"), out);
                }
            }
        }
    }
}

/// Every path after `anchor` (`crate::` or `super::`) in `code`, with
/// `use` groups spanning several lines joined first.
fn paths_after(code: &[(usize, String)], anchor: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let joined: Vec<(usize, char)> = code
        .iter()
        .flat_map(|(n, l)| l.chars().chain(std::iter::once(' ')).map(move |c| (*n, c)))
        .collect();
    let text: String = joined.iter().map(|(_, c)| *c).collect();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let a: Vec<char> = anchor.chars().collect();
    while i + a.len() <= chars.len() {
        let preceded_by_ident =
            i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_' || chars[i - 1] == ':');
        if chars[i..i + a.len()] == a[..] && !preceded_by_ident {
            let line = joined[i].0;
            let mut j = i + a.len();
            let mut path = String::new();
            let mut depth = 0;
            while j < chars.len() {
                let c = chars[j];
                if c == '{' {
                    depth += 1;
                } else if c == '}' {
                    if depth == 0 {
                        break;
                    }
                    depth -= 1;
                    if depth == 0 {
                        path.push(c);
                        j += 1;
                        break;
                    }
                } else if depth == 0 && !(c.is_alphanumeric() || c == '_' || c == ':') {
                    break;
                }
                path.push(c);
                j += 1;
            }
            found.push((line, path));
            i = j;
        } else {
            i += 1;
        }
    }
    found
}

/// The module graph of the crate under `src`.
fn module_graph(src: &Path) -> BTreeMap<String, Vec<Edge>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files
        .iter()
        .filter(|f| !f.ends_with("main.rs"))
        .map(|f| module_of(src, f))
        .collect();
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| modules.contains(m))
    };
    let mut graph: BTreeMap<String, Vec<Edge>> = BTreeMap::new();
    for file in &files {
        if file.ends_with("main.rs") {
            continue;
        }
        let from = module_of(src, file);
        let text = std::fs::read_to_string(file).expect("read source");
        let code = code_of(&text);
        let mut named = Vec::new();
        for (line, p) in paths_after(&code, "crate::") {
            let mut out = Vec::new();
            expand(&p, &mut out);
            named.extend(out.into_iter().map(|p| (line, p)));
        }
        // `super::` in a file module names its parent's path.
        let parent: Vec<&str> = from.split("::").filter(|p| !p.is_empty()).collect();
        let parent = parent[..parent.len().saturating_sub(1)].join("::");
        for (line, p) in paths_after(&code, "super::") {
            let mut out = Vec::new();
            expand(&p, &mut out);
            named.extend(out.into_iter().map(|p| {
                let full = if parent.is_empty() {
                    p
                } else if p.is_empty() {
                    parent.clone()
                } else {
                    format!("{parent}::{p}")
                };
                (line, full)
            }));
        }
        // A parent naming its children (`mod x;`, `pub use x::Y`).
        if file.ends_with("mod.rs") || file.ends_with("lib.rs") {
            for (line, l) in &code {
                let t = l.trim();
                let rest = t
                    .strip_prefix("pub use ")
                    .or_else(|| t.strip_prefix("use "))
                    .filter(|r| !r.starts_with("crate::") && !r.starts_with("super::"));
                if let Some(r) = rest {
                    let child = r.split("::").next().unwrap_or("").trim();
                    let m = if from.is_empty() {
                        child.to_string()
                    } else {
                        format!("{from}::{child}")
                    };
                    if modules.contains(&m) {
                        named.push((*line, m));
                    }
                }
            }
        }
        let edges = graph.entry(from.clone()).or_default();
        for (line, p) in named {
            if let Some(to) = resolve(&p)
                && to != from
                && !to.is_empty()
            {
                edges.push(Edge {
                    to,
                    file: file.clone(),
                    line,
                });
            }
        }
    }
    graph.remove("");
    graph
}

/// Strongly connected components with more than one module (Tarjan).
fn circles(graph: &BTreeMap<String, Vec<Edge>>) -> Vec<Vec<String>> {
    struct T<'g> {
        g: &'g BTreeMap<String, Vec<Edge>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on: BTreeSet<String>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit(t: &mut T<'_>, v: &str) {
        t.index.insert(v.to_string(), t.next);
        t.low.insert(v.to_string(), t.next);
        t.next += 1;
        t.stack.push(v.to_string());
        t.on.insert(v.to_string());
        let targets: Vec<String> =
            t.g.get(v)
                .map(|es| es.iter().map(|e| e.to.clone()).collect())
                .unwrap_or_default();
        for w in targets {
            if !t.index.contains_key(&w) {
                visit(t, &w);
                let lw = t.low[&w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if t.on.contains(&w) {
                let iw = t.index[&w];
                let lv = t.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().expect("on stack");
                t.on.remove(&w);
                comp.push(w.clone());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    let nodes: Vec<String> = graph.keys().cloned().collect();
    for v in nodes {
        if !t.index.contains_key(&v) {
            visit(&mut t, &v);
        }
    }
    t.out
}

#[test]
fn node_modules_import_each_other_without_a_circle() {
    let src = workspace().join("node/src");
    let graph = module_graph(&src);
    assert!(
        graph.len() > 5,
        "the module graph of node/ is implausibly small: {:?}",
        graph.keys().collect::<Vec<_>>()
    );
    let found = circles(&graph);
    if !found.is_empty() {
        let mut report = String::new();
        for comp in &found {
            report.push_str(&format!("circle among {comp:?}:\n"));
            let mut seen = BTreeSet::new();
            for m in comp {
                for e in graph.get(m).into_iter().flatten() {
                    if comp.contains(&e.to) && seen.insert((m.clone(), e.to.clone(), e.line)) {
                        report.push_str(&format!(
                            "  {m} -> {} ({}:{})\n",
                            e.to,
                            e.file
                                .strip_prefix(workspace())
                                .unwrap_or(&e.file)
                                .display(),
                            e.line
                        ));
                    }
                }
            }
        }
        panic!("node/'s modules form import circles:\n{report}");
    }
}

#[test]
fn the_circle_check_finds_a_circle_when_there_is_one() {
    // The checker itself must be able to fail.
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("store")).expect("mkdir");
    std::fs::write(
        src.join("lib.rs"),
        "pub mod a;\npub mod b;\npub mod store;\n",
    )
    .expect("w");
    std::fs::write(src.join("a.rs"), "use crate::b::Thing;\n").expect("w");
    std::fs::write(
        src.join("b.rs"),
        "use crate::{store::x, a::{self, Other}};\n// use crate::store;\n",
    )
    .expect("w");
    std::fs::write(src.join("store/mod.rs"), "pub mod x;\npub use x::Y;\n").expect("w");
    std::fs::write(
        src.join("store/x.rs"),
        "use super::Z;\n#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n",
    )
    .expect("w");
    let graph = module_graph(src);
    let mut found = circles(&graph);
    found.sort();
    assert_eq!(
        found,
        vec![
            vec!["a".to_string(), "b".to_string()],
            vec!["store".to_string(), "store::x".to_string()],
        ]
    );
}

/// Crates that must stay pure (STYLE.md habit 1): no async runtime, RPC,
/// consensus engine or database among their dependencies.
#[test]
fn pure_crates_depend_on_no_runtime_rpc_or_database() {
    const FORBIDDEN: [&str; 7] = [
        "tokio",
        "tonic",
        "rocksdb",
        "openraft",
        "hyper",
        "prost",
        "senatus-node",
    ];
    for krate in ["genesis", "quorum", "replica"] {
        let manifest = workspace().join(krate).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).expect("read manifest");
        let deps = text
            .split("[dependencies]")
            .nth(1)
            .expect("a [dependencies] table")
            .split("\n[")
            .next()
            .unwrap_or("");
        for line in deps.lines() {
            let name = line.split(['=', '.']).next().unwrap_or("").trim();
            assert!(
                !FORBIDDEN
                    .iter()
                    .any(|f| name == *f || name.starts_with(&format!("{f}-"))),
                "{krate}/Cargo.toml depends on {name}, which a pure crate must not"
            );
        }
        let mut files = Vec::new();
        rust_files(&workspace().join(krate).join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read");
            for (n, l) in code_of(&text) {
                for bad in ["tokio::", "tonic::", "rocksdb::", "openraft::"] {
                    assert!(
                        !l.contains(bad),
                        "{}:{n} uses {bad} in a pure crate",
                        f.display()
                    );
                }
            }
        }
    }
}
